package stream

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// IndexBucket is the request index `ticketer trace` and the console search
// by: e-mail, name words, row id and Jira key → record hash, and each
// hash's FORMS sequence and latest delivery outcome (see internal/index).
// ticketer writes it as events arrive in FORMS and as it processes them.
const IndexBucket = "FORMS_INDEX"

// IndexConfig is KV bucket FORMS_INDEX: the latest value of each key, no
// TTL (it is rebuilt from FORMS when lost: delete the bucket and restart a
// ticketer).
func IndexConfig(c Config) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      IndexBucket,
		Description: "Request index for ticketer trace and the console: e-mail, name, row id, Jira key → record hash; hash → FORMS seq and last outcome",
		Storage:     jetstream.FileStorage,
		Replicas:    c.replicas(),
		History:     1,
	}
}

// EnsureIndex creates or updates KV bucket FORMS_INDEX (ticketer owns it).
func EnsureIndex(ctx context.Context, js jetstream.JetStream, c Config) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, IndexConfig(c))
	if err != nil {
		return nil, fmt.Errorf("create or update KV bucket %s: %w", IndexBucket, err)
	}
	return kv, nil
}

// LookupIndex is FORMS_INDEX for commands, which never create it.
func LookupIndex(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, IndexBucket)
	if err != nil {
		return nil, fmt.Errorf("KV bucket %s (has a ticketer service with trace support run?): %w", IndexBucket, err)
	}
	return kv, nil
}
