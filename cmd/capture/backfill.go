package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/cowjacket/formjira/internal/capture"
	"github.com/cowjacket/formjira/internal/cli"
	"github.com/cowjacket/formjira/internal/telemetry"
)

var backfillCommand = cli.Command{
	Name:    "backfill",
	Args:    "[--since DATE]",
	Summary: "publish rows already in the table (keyset pages)",
	Run:     backfill,
}

func backfill(ctx context.Context, env cli.Env, args []string) error {
	fs := flag.NewFlagSet("backfill", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	since := fs.String("since", "", "only rows with createdat on or after this date (YYYY-MM-DD)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return cli.NoArgs("backfill", fs.Args())
	}
	var sinceDate time.Time
	if *since != "" {
		var err error
		if sinceDate, err = time.Parse(time.DateOnly, *since); err != nil {
			return fmt.Errorf("--since: want YYYY-MM-DD, got %q", *since)
		}
	}
	cfg, err := capture.LoadConfig(env.Getenv)
	if err != nil {
		return err
	}
	res, err := capture.Backfill(ctx, cfg, sinceDate, telemetry.NewLogger(env.Stderr, cfg.LogLevel))
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "backfill: %d rows read, %d published, %d duplicates collapsed, %d dead-lettered\n",
		res.Read, res.Published, res.Duplicates, res.DeadLettered)
	return nil
}
