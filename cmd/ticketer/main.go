// Command ticketer turns form events into Jira tickets (the service,
// internal/ticketer) and holds the operators' commands, one per file.
package main

import (
	"context"
	"io"
	"log/slog"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/cli"
	"github.com/cowjacket/formjira/internal/telemetry"
	"github.com/cowjacket/formjira/internal/ticketer"
)

func main() { cli.Main(program) }

var program = cli.Program{
	Name: "ticketer",
	Doc:  "turns form events of stream FORMS into Jira tickets, exactly once each.",
	Vars: ticketer.Vars,
	Commands: []cli.Command{
		serveCommand, checkCommand, dlqCommand, replayCommand, statsCommand, traceCommand, consoleCommand, healthcheckCommand,
	},
}

// run is the whole binary, for tests.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return program.Run(ctx, args, getenv, stdout, stderr)
}

// load is the configuration and logger every command starts from.
func load(env cli.Env) (*ticketer.Config, *slog.Logger, error) {
	cfg, err := ticketer.LoadConfig(env.Getenv)
	if err != nil {
		return nil, nil, err
	}
	return cfg, telemetry.NewLogger(env.Stderr, cfg.LogLevel), nil
}

// connect is load, then NATS as a one-off command connects (a few
// reconnects, then give up); the caller closes nc.
func connect(ctx context.Context, env cli.Env) (*ticketer.Config, *nats.Conn, jetstream.JetStream, error) {
	cfg, log, err := load(env)
	if err != nil {
		return nil, nil, nil, err
	}
	nc, js, err := cfg.Connect(ctx, log, ticketer.CommandNATS...)
	if err != nil {
		return nil, nil, nil, err
	}
	return cfg, nc, js, nil
}
