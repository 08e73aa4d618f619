package stream

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// JiraBucket is what ticketer replicas share about the Jira site: the
// circuit (is Jira up), each endpoint's pace after a 429, the live
// replicas (see internal/jirasite).
const JiraBucket = "FORMS_JIRA"

// JiraConfig is KV bucket FORMS_JIRA: the latest value of each entry.
func JiraConfig(c Config) jetstream.KeyValueConfig {
	return c.bucket(JiraBucket, "ticketer replicas' shared view of Jira: circuit, pace, live replicas")
}

// EnsureJira creates or updates KV bucket FORMS_JIRA (ticketer owns it).
func EnsureJira(ctx context.Context, js jetstream.JetStream, c Config) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, JiraConfig(c))
	if err != nil {
		return nil, fmt.Errorf("create or update KV bucket %s: %w", JiraBucket, err)
	}
	return kv, nil
}
