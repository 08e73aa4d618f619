package stream

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// FORMS_AUDIT: who did what in the console, and when, with the outcome
// (see internal/audit). Kept until an operator sets limits.
const (
	Audit         = "FORMS_AUDIT"
	AuditSubjects = "forms.audit.>"
)

// AuditSubject is where actions of a kind are recorded, e.g.
// forms.audit.replay.
func AuditSubject(action string) string { return "forms.audit." + token(action) }

// AuditConfig is stream FORMS_AUDIT: file storage, nothing dropped (a full
// stream refuses new entries rather than forgetting old ones).
func AuditConfig(c Config) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        Audit,
		Description: "Operator actions from the ticketer console (who, what, when, outcome)",
		Subjects:    []string{AuditSubjects},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Replicas:    c.replicas(),
		Discard:     jetstream.DiscardNew,
	}
}

// EnsureAudit creates or updates stream FORMS_AUDIT (the console, a
// ticketer process, owns it).
func EnsureAudit(ctx context.Context, js jetstream.JetStream, c Config) (jetstream.Stream, error) {
	st, err := js.CreateOrUpdateStream(ctx, AuditConfig(c))
	if err != nil {
		return nil, fmt.Errorf("create or update stream %s: %w", Audit, err)
	}
	return st, nil
}
