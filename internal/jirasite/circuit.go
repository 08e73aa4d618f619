package jirasite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/stream"
)

// Circuit is the shared circuit as the console shows it.
type Circuit struct {
	State  string    `json:"state"` // closed or open
	Since  time.Time `json:"since,omitzero"`
	Reason string    `json:"reason,omitempty"`
	By     string    `json:"by,omitempty"`
}

// ReadCircuit reads the shared circuit from FORMS_JIRA: closed when no
// replica ever opened it (or the bucket does not exist yet).
func ReadCircuit(ctx context.Context, js jetstream.JetStream) (Circuit, error) {
	kv, err := js.KeyValue(ctx, stream.JiraBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return Circuit{State: "closed"}, nil
	}
	if err != nil {
		return Circuit{}, fmt.Errorf("KV bucket %s: %w", stream.JiraBucket, err)
	}
	e, err := kv.Get(ctx, circuitKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Circuit{State: "closed"}, nil
	}
	if err != nil {
		return Circuit{}, fmt.Errorf("read %s %s: %w", stream.JiraBucket, circuitKey, err)
	}
	var c circuit
	if err := json.Unmarshal(e.Value(), &c); err != nil {
		return Circuit{}, fmt.Errorf("decode %s %s: %w", stream.JiraBucket, circuitKey, err)
	}
	return Circuit{State: c.State, Since: c.Since, Reason: c.Reason, By: c.By}, nil
}
