package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/cowjacket/formjira/internal/cli"
	"github.com/cowjacket/formjira/internal/stats"
)

var statsCommand = cli.Command{
	Name:    "stats",
	Args:    "[--days N] [--json]",
	Summary: "daily summary: created, failed, skipped, dead-lettered, latency",
	Run:     runStats,
}

func runStats(ctx context.Context, env cli.Env, args []string) error {
	fs := flag.NewFlagSet("stats", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	days := fs.Int("days", 7, "days to show, today included")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return cli.ErrUsage
	}
	if *days < 1 || *days > 400 {
		return fmt.Errorf("stats: --days must be 1..400, got %d", *days)
	}
	_, nc, js, err := connect(ctx, env)
	if err != nil {
		return err
	}
	defer nc.Close()
	now := time.Now().UTC()
	first := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, -(*days - 1))
	out, err := stats.Read(ctx, js, first, *days)
	if err != nil {
		return fmt.Errorf("stats: %w", err)
	}
	return printStats(env.Stdout, out, *asJSON)
}

func printStats(w io.Writer, days []stats.DayStats, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(days)
	}
	var total stats.DayStats
	total.Day = "total"
	for _, d := range days {
		fmt.Fprintln(w, d.Line())
		total.Created += d.Created
		total.Failed += d.Failed
		total.Skipped += d.Skipped
		total.DeadLettered += d.DeadLettered
	}
	fmt.Fprintf(w, "total over %d day(s): %d created, %d failed, %d skipped as duplicates, %d dead-lettered\n",
		len(days), total.Created, total.Failed, total.Skipped, total.DeadLettered)
	return nil
}
