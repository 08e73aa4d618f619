package stream

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// EnsureForms creates or updates stream FORMS.
func EnsureForms(ctx context.Context, js jetstream.JetStream, c Config) (jetstream.Stream, error) {
	s, err := js.CreateOrUpdateStream(ctx, FormsConfig(c))
	if err != nil {
		return nil, fmt.Errorf("create or update stream %s: %w", Forms, err)
	}
	return s, nil
}

// EnsureDLQ creates or updates stream FORMS_DLQ.
func EnsureDLQ(ctx context.Context, js jetstream.JetStream, c Config) (jetstream.Stream, error) {
	s, err := js.CreateOrUpdateStream(ctx, DLQConfig(c))
	if err != nil {
		return nil, fmt.Errorf("create or update stream %s: %w", DLQ, err)
	}
	return s, nil
}

// EnsureTickets creates or updates KV bucket FORMS_TICKETS.
func EnsureTickets(ctx context.Context, js jetstream.JetStream, c Config) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, TicketsConfig(c))
	if err != nil {
		return nil, fmt.Errorf("create or update KV bucket %s: %w", TicketsBucket, err)
	}
	return kv, nil
}

// EnsureAll creates or updates every stream and bucket of the pipeline.
func EnsureAll(ctx context.Context, js jetstream.JetStream, c Config) error {
	_, err1 := EnsureForms(ctx, js, c)
	_, err2 := EnsureDLQ(ctx, js, c)
	_, err3 := EnsureTickets(ctx, js, c)
	return errors.Join(err1, err2, err3)
}
