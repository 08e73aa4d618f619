// Package ticketer is the ticketer binary: it consumes form events from
// stream FORMS and turns each into exactly one Jira ticket (see Processor),
// dead-letters what Jira refuses, and serves metrics. Subcommands live in
// commands (this file); each is one function over an *Env.
package ticketer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	"github.com/cowjacket/formjira/internal/config"
	"github.com/cowjacket/formjira/internal/telemetry"
)

// Command is one subcommand: args are the words after its name.
type Command struct {
	Summary string
	Run     func(ctx context.Context, env *Env, args []string) error
}

// commands are ticketer's subcommands; "" is the service. Another file adds
// a command by adding a line here (dlq, replay, stats).
var commands = map[string]Command{
	"":            {Summary: "run the service: consume FORMS, create tickets", Run: runService},
	"check":       {Summary: "validate the mapping against Jira's fields and the events in FORMS", Run: runCheck},
	"dlq":         {Summary: "dead letters: list [--json] | show SEQ | replay SEQ… | replay --all", Run: runDLQ},
	"replay":      {Summary: "re-process FORMS: --from-seq N [--to-seq M] | --since DURATION [--force]", Run: runReplay},
	"stats":       {Summary: "daily summary: created, failed, skipped, dead-lettered, latency [--days N] [--json]", Run: runStats},
	"healthcheck": {Summary: "exit 0 if the service on HTTP_ADDR answers /healthz (for container health checks)", Run: runHealthcheck},
}

// Env is what a command gets: configuration, logger and output.
type Env struct {
	Config *Config
	Log    *slog.Logger
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string // the layered environment (.env below the process's)
}

// Run is the whole binary. It prints a failure (one line) to stderr and
// returns it, so main only has to choose the exit code.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	err := run(ctx, args, getenv, stdout, stderr)
	if err != nil && !errors.Is(err, errUsage) {
		fmt.Fprintln(stderr, "ticketer:", oneLine(err.Error()))
	}
	return err
}

var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	name := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if name == "help" || slices.Contains(args, "--help") || slices.Contains(args, "-h") || slices.Contains(args, "-help") {
		usage(stdout)
		return nil
	}
	cmd, ok := commands[name]
	if !ok {
		usage(stderr)
		fmt.Fprintf(stderr, "ticketer: unknown command %q\n", name)
		return errUsage
	}
	dotenv, err := config.LoadDotEnv(".env")
	if err != nil {
		return fmt.Errorf(".env: %w", err)
	}
	get := config.Env(getenv, nil, dotenv)
	cfg, err := LoadConfig(get)
	if err != nil {
		return err
	}
	env := &Env{Config: cfg, Log: telemetry.NewLogger(stderr, cfg.LogLevel), Stdout: stdout, Stderr: stderr, Getenv: get}
	return cmd.Run(ctx, env, args)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: ticketer [command] [args]")
	fmt.Fprintln(w, "\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		label := n
		if label == "" {
			label = "(none)"
		}
		fmt.Fprintf(w, "  %-12s %s\n", label, commands[n].Summary)
	}
	fmt.Fprintln(w, "\nEnvironment (also read from ./.env; the process environment wins):")
	config.Usage(w, Vars)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
