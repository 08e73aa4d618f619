package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

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

// JiraHealthPrefix starts each ticketer replica's entry in FORMS_JIRA
// (health.<replica>): what it saw of Jira lately, for the console.
const JiraHealthPrefix = "health."

// JiraHealth is one replica's recent view of Jira (JSON), rewritten every
// few seconds and deleted when the replica stops.
type JiraHealth struct {
	Replica     string    `json:"replica"`
	LastSuccess time.Time `json:"last_success,omitzero"` // last 2xx answer
	LastFailure time.Time `json:"last_failure,omitzero"` // last 5xx, 429 or no answer
	// Requests and Throttled count calls and 429 answers since the replica
	// started; Throttled15m the 429s of the last 15 minutes.
	Requests     int64     `json:"requests"`
	Throttled    int64     `json:"throttled"`
	Throttled15m int64     `json:"throttled_15m"`
	LastThrottle time.Time `json:"last_throttle,omitzero"`
	// LatencyMS are the durations of the latest calls (at most a few
	// hundred), so readers can merge replicas into percentiles.
	LatencyMS []float64 `json:"latency_ms,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// JiraHealthStale: an entry older than this is a replica that died.
const JiraHealthStale = time.Minute

// ReadJiraHealth returns the live replicas' entries. No bucket is none.
func ReadJiraHealth(ctx context.Context, js jetstream.JetStream) ([]JiraHealth, error) {
	kv, err := js.KeyValue(ctx, JiraBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("KV bucket %s: %w", JiraBucket, err)
	}
	lister, err := kv.ListKeysFiltered(ctx, JiraHealthPrefix+">")
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", JiraBucket, err)
	}
	defer func() { _ = lister.Stop() }()
	var out []JiraHealth
	for k := range lister.Keys() {
		e, err := kv.Get(ctx, k)
		if err != nil {
			continue // deleted since the listing
		}
		var h JiraHealth
		if json.Unmarshal(e.Value(), &h) != nil || time.Since(h.UpdatedAt) > JiraHealthStale {
			continue
		}
		out = append(out, h)
	}
	return out, nil
}
