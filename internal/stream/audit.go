package stream

import (
	"context"

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

// EnsureAudit creates stream FORMS_AUDIT when missing (the console, a
// ticketer process, owns it) and never rewrites it: the console runs as the
// operators' NATS user, and a user that may update the audit trail could
// shorten it, or have it republished elsewhere.
func EnsureAudit(ctx context.Context, js jetstream.JetStream, c Config) (jetstream.Stream, error) {
	return EnsureExists(ctx, js, AuditConfig(c))
}
