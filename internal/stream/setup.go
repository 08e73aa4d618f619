package stream

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// EnsureForms creates or updates stream FORMS, keeping the limits an
// operator set on it (FORMS keeps everything until then: see FormsConfig).
func EnsureForms(ctx context.Context, js jetstream.JetStream, c Config) (jetstream.Stream, error) {
	cfg := FormsConfig(c)
	if s, err := js.Stream(ctx, Forms); err == nil {
		keepLimits(&cfg, s.CachedInfo().Config)
	}
	s, err := js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create or update stream %s: %w", Forms, err)
	}
	return s, nil
}

// keepLimits copies the retention limits of an existing stream's config
// into cfg.
func keepLimits(cfg *jetstream.StreamConfig, old jetstream.StreamConfig) {
	cfg.MaxAge, cfg.MaxBytes, cfg.MaxMsgs = old.MaxAge, old.MaxBytes, old.MaxMsgs
	cfg.MaxMsgsPerSubject, cfg.MaxMsgSize = old.MaxMsgsPerSubject, old.MaxMsgSize
}

// EnsureDLQ creates stream FORMS_DLQ when missing. Both services write it,
// so neither rewrites an existing one (differing STREAM_REPLICAS would
// otherwise flap its configuration at every restart).
func EnsureDLQ(ctx context.Context, js jetstream.JetStream, c Config) (jetstream.Stream, error) {
	return EnsureExists(ctx, js, DLQConfig(c))
}

// EnsureExists creates the stream when it is missing and otherwise leaves
// it as it is: for streams another service owns (ticketer must not reset the
// duplicate window or replicas capture set on FORMS), and for FORMS_DLQ,
// which both services write.
func EnsureExists(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, cfg.Name)
	if err == nil {
		return s, nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("look up stream %s: %w", cfg.Name, err)
	}
	s, err = js.CreateStream(ctx, cfg)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		// Another replica created it meanwhile.
		return js.Stream(ctx, cfg.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("create stream %s: %w", cfg.Name, err)
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

// EnsureStats creates or updates stream FORMS_STATS (ticketer owns it).
func EnsureStats(ctx context.Context, js jetstream.JetStream, c Config) (jetstream.Stream, error) {
	st, err := js.CreateOrUpdateStream(ctx, StatsConfig(c))
	if err != nil {
		return nil, fmt.Errorf("create or update stream %s: %w", Stats, err)
	}
	if !st.CachedInfo().Config.AllowMsgCounter {
		return nil, fmt.Errorf("stream %s: this nats-server has no counter streams (nats-server 2.12 or later needed)", Stats)
	}
	return st, nil
}

// LookupTickets is bucket FORMS_TICKETS for commands, which never create
// or update it.
func LookupTickets(ctx context.Context, js jetstream.JetStream) (Tickets, error) {
	kv, err := js.KeyValue(ctx, TicketsBucket)
	if err != nil {
		return Tickets{}, fmt.Errorf("KV bucket %s (has the ticketer service run?): %w", TicketsBucket, err)
	}
	return Tickets{KV: kv}, nil
}
