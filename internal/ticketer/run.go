// Package ticketer is the ticketer service: a pool of workers on the
// durable consumer of FORMS that hands batches to the ticketing engine and
// settles each message (ack, nak with backoff, term after a dead letter),
// with readiness, metrics, alerts and the daily counters. Its
// configuration (Config, Vars) and the constructors built on it (Jira
// client, NATS, engine) are shared with the subcommands in cmd/ticketer.
package ticketer

import (
	"context"
	"io"

	"github.com/cowjacket/formjira/internal/telemetry"
)

// Run is the service as cmd/ticketer, the demo and the tests run it: the
// configuration from getenv, logs to stderr, until ctx ends.
func Run(ctx context.Context, getenv func(string) string, _, stderr io.Writer) error {
	cfg, err := LoadConfig(getenv)
	if err != nil {
		return err
	}
	return Serve(ctx, cfg, telemetry.NewLogger(stderr, cfg.LogLevel))
}
