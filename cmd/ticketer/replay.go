package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/cli"
	"github.com/cowjacket/formjira/internal/jira"
	"github.com/cowjacket/formjira/internal/replay"
	"github.com/cowjacket/formjira/internal/stats"
	"github.com/cowjacket/formjira/internal/stream"
)

var replayCommand = cli.Command{
	Name:    "replay",
	Args:    "--from-seq N [--to-seq M] | --since DURATION [--force]",
	Summary: "re-process events of FORMS (--force creates a ticket even when one is recorded)",
	Run:     runReplay,
}

// replayer is a replay.Replayer with its connection, for one command.
// Every replay command builds a new one, so Jira's field metadata is
// fetched afresh: a mapping or a Jira option fixed since the failure takes
// effect.
type replayer struct {
	*replay.Replayer
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
	m, err := cfg.LoadMapping()
	if err != nil {
		return nil, err
	}
	jc, err := cfg.JiraClient(m, jira.Options{})
	if err != nil {
		return nil, err
	}
	nc, js, err := cfg.Connect(ctx, log, nats.MaxReconnects(5))
	if err != nil {
		return nil, err
	}
	// Commands only look up what the service owns.
	tickets, err := stream.LookupTickets(ctx, js)
	if err == nil {
		_, err = js.Stream(ctx, stream.DLQ)
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	requesters, err := cfg.Requesters(ctx, js, m, jc, false, log)
	if err != nil {
		nc.Close()
		return nil, err
	}
	engine, err := cfg.Engine(js, tickets, m, jc, nil, requesters, nil, log)
	if err != nil {
		nc.Close()
		return nil, err
	}
	// A fresh look at Jira, now: fails early (and clearly) on bad
	// credentials.
	engine.InvalidateMeta()
	if _, err := engine.Meta(ctx); err != nil {
		nc.Close()
		if errors.Is(err, jira.ErrAuth) {
			return nil, fmt.Errorf("Jira refuses the credentials (JIRA_EMAIL/JIRA_API_TOKEN or JIRA_PAT): %w", err)
		}
		return nil, err
	}
	r := &replayer{Replayer: &replay.Replayer{Engine: engine, JS: js, BatchSize: cfg.BatchSize}, nc: nc, js: js}
	if _, err := js.Stream(ctx, stream.Stats); err == nil {
		r.Stats = stats.NewRecorder(js, log)
	} else {
		log.Warn("daily counters unavailable; replay not counted in stats", "err", err)
	}
	return r, nil
}

func (r *replayer) close() {
	fctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_ = r.Stats.Flush(fctx)
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
