package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/cli"
	"github.com/cowjacket/formjira/internal/replay"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/ticketer"
)

var replayCommand = cli.Command{
	Name:    "replay",
	Args:    "--from-seq N [--to-seq M] | --since DURATION [--force]",
	Summary: "re-process events of FORMS (--force creates a ticket even when one is recorded)",
	Run:     runReplay,
}

// replayer is a ticketer.Replayer with its connection, for one command.
type replayer struct {
	*ticketer.Replayer
	nc *nats.Conn
	js jetstream.JetStream
}

func newReplayer(ctx context.Context, env cli.Env) (*replayer, error) {
	cfg, log, err := load(env)
	if err != nil {
		return nil, err
	}
	if err := cfg.RequireJira(); err != nil {
		return nil, err
	}
	nc, js, err := cfg.Connect(ctx, log, ticketer.CommandNATS...)
	if err != nil {
		return nil, err
	}
	r, err := cfg.NewReplayer(ctx, js, log)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &replayer{Replayer: r, nc: nc, js: js}, nil
}

func (r *replayer) close() {
	r.Close()
	r.nc.Close()
}

func runReplay(ctx context.Context, env cli.Env, args []string) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	var rng replay.Range
	fs.Uint64Var(&rng.FromSeq, "from-seq", 0, "first FORMS sequence to re-process")
	fs.Uint64Var(&rng.ToSeq, "to-seq", 0, "last FORMS sequence to re-process (default: the stream's last)")
	fs.DurationVar(&rng.Since, "since", 0, "re-process events stored within this duration (e.g. 2h)")
	fs.BoolVar(&rng.Force, "force", false, "create a ticket even when one is recorded (the record then points at the new one)")
	usage := func() error {
		fmt.Fprintln(env.Stderr, "usage: ticketer replay --from-seq N [--to-seq M] [--force] | ticketer replay --since DURATION [--to-seq M] [--force]")
		return cli.ErrUsage
	}
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return usage()
	}
	if (rng.FromSeq > 0) == (rng.Since > 0) {
		return usage()
	}
	if rng.ToSeq > 0 && rng.FromSeq > rng.ToSeq {
		return fmt.Errorf("replay: --to-seq %d is before --from-seq %d", rng.ToSeq, rng.FromSeq)
	}
	r, err := newReplayer(ctx, env)
	if err != nil {
		return err
	}
	defer r.close()
	res, first, last, err := r.Forms(ctx, rng, func(o replay.Outcome) { fmt.Fprintln(env.Stdout, o.Line) })
	printReplayResult(env.Stdout, res, first, last, rng.Force)
	if err != nil {
		return err
	}
	if res.Failing > 0 {
		return fmt.Errorf("replay: %d event(s) still failing; see ticketer dlq list", res.Failing)
	}
	return nil
}

func printReplayResult(w io.Writer, res replay.Result, first, last uint64, force bool) {
	rng := "no events in range"
	if first > 0 {
		rng = fmt.Sprintf("%s seq %d..%d", stream.Forms, first, last)
	}
	mode := ""
	if force {
		mode = ", forced"
	}
	fmt.Fprintf(w, "replay (%s%s): %d replayed: %d created, %d skipped (already ticketed), %d still failing\n",
		rng, mode, res.Replayed, res.Created, res.Skipped, res.Failing)
}
