package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/cowjacket/formjira/internal/cli"
	"github.com/cowjacket/formjira/internal/deadletters"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/table"
)

var dlqCommand = cli.Command{
	Name:    "dlq",
	Args:    "list [--json] | show SEQ | replay SEQ… | replay --all",
	Summary: "dead letters: what failed and why; replay them",
	Run:     runDLQ,
}

// runDLQ is `ticketer dlq list|show|replay`.
func runDLQ(ctx context.Context, env cli.Env, args []string) error {
	if len(args) == 0 {
		fmt.Fprintln(env.Stderr, "usage: ticketer dlq list [--json] | dlq show SEQ | dlq replay SEQ… | dlq replay --all")
		return cli.ErrUsage
	}
	switch args[0] {
	case "list":
		return dlqList(ctx, env, args[1:])
	case "show":
		return dlqShow(ctx, env, args[1:])
	case "replay":
		return dlqReplay(ctx, env, args[1:])
	}
	fmt.Fprintf(env.Stderr, "ticketer dlq: unknown subcommand %q (want list, show or replay)\n", args[0])
	return cli.ErrUsage
}

func dlqList(ctx context.Context, env cli.Env, args []string) error {
	fs := flag.NewFlagSet("dlq list", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	asJSON := fs.Bool("json", false, "print JSON, one array of entries")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return cli.ErrUsage
	}
	_, nc, js, err := connect(ctx, env)
	if err != nil {
		return err
	}
	defer nc.Close()
	st, err := deadletters.Open(ctx, js)
	if err != nil {
		return err
	}
	entries, err := deadletters.List(ctx, st)
	if err != nil {
		return err
	}
	if *asJSON {
		if entries == nil {
			entries = []*deadletters.Entry{}
		}
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(entries)
	}
	printEntries(env.Stdout, entries)
	return nil
}

// Widths of the listing's cells (dlq show and --json print them whole).
const (
	listNameWidth   = 40
	listEmailWidth  = 40
	listReasonWidth = 200
)

func printEntries(w io.Writer, entries []*deadletters.Entry) {
	if len(entries) == 0 {
		fmt.Fprintf(w, "%s is empty: nothing is dead-lettered\n", stream.DLQ)
		return
	}
	t := table.New(w, table.Column{Title: "SEQ"}, table.Column{Title: "WHEN (UTC)"}, table.Column{Title: "HASH"},
		table.Column{Title: "NAME", Max: listNameWidth}, table.Column{Title: "EMAIL", Max: listEmailWidth},
		table.Column{Title: "ATTEMPTS"}, table.Column{Title: "REASON", Max: listReasonWidth})
	for _, e := range entries {
		t.Row(strconv.FormatUint(e.Seq, 10), e.Time.Format("2006-01-02 15:04:05"), deadletters.ShortHash(e.Hash),
			cmp.Or(e.Name, "-"), cmp.Or(e.Email, "-"), strconv.Itoa(e.Attempts), e.ReasonText)
	}
	t.Flush()
	fmt.Fprintf(w, "%d dead letter(s); details: ticketer dlq show SEQ\n", len(entries))
}

func parseSeq(s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("want a stream sequence (a positive number), got %q", s)
	}
	return n, nil
}

func dlqShow(ctx context.Context, env cli.Env, args []string) error {
	if len(args) != 1 {
		fmt.Fprintln(env.Stderr, "usage: ticketer dlq show SEQ")
		return cli.ErrUsage
	}
	seq, err := parseSeq(args[0])
	if err != nil {
		return fmt.Errorf("dlq show: %w", err)
	}
	_, nc, js, err := connect(ctx, env)
	if err != nil {
		return err
	}
	defer nc.Close()
	st, err := deadletters.Open(ctx, js)
	if err != nil {
		return err
	}
	e, err := deadletters.Get(ctx, st, seq)
	if err != nil {
		return err
	}
	if e == nil {
		return fmt.Errorf("dlq show: no dead letter at %s seq %d (replayed or removed?)", stream.DLQ, seq)
	}
	w := env.Stdout
	fmt.Fprintf(w, "Dead letter %d of %s (subject %s), stored %s\n", e.Seq, stream.DLQ, e.Subject, e.Time.Format(time.RFC3339))
	fmt.Fprintf(w, "Request:  %s, hash %s\n", deadletters.Who(e.Name, e.Email), e.Hash)
	fmt.Fprintf(w, "Reason:   %s\n", deadletters.ReasonTitles[e.Reason]+" ("+cmp.Or(e.Reason, "?")+")")
	if len(e.FieldErrors) > 0 {
		fmt.Fprintln(w, "Fields:")
		for _, fe := range e.FieldErrors {
			fmt.Fprintf(w, "  - %s\n", fe)
		}
	}
	if e.Error != "" {
		fmt.Fprintf(w, "Error:    %s\n", e.Error)
	}
	fmt.Fprintf(w, "Attempts: %d", e.Attempts)
	if !e.FirstFailure.IsZero() {
		fmt.Fprintf(w, ", first failure %s, last %s", e.FirstFailure.UTC().Format(time.RFC3339), e.LastFailure.UTC().Format(time.RFC3339))
	}
	fmt.Fprintln(w)
	if e.OrigStream != "" {
		fmt.Fprintf(w, "Original: %s seq %d\n", e.OrigStream, e.OrigSeq)
	}
	if e.Hash != "" {
		if tickets, err := stream.LookupTickets(ctx, js); err == nil {
			switch r, _, err := tickets.Get(ctx, e.Hash); {
			case err != nil:
				fmt.Fprintf(w, "Ticket:   (record unreadable: %v)\n", err)
			case r == nil:
				fmt.Fprintln(w, "Ticket:   none recorded")
			case r.State == stream.StateCreated:
				fmt.Fprintf(w, "Ticket:   %s already exists (replaying removes this entry without creating another)\n", r.Key)
			default:
				fmt.Fprintf(w, "Ticket:   claimed at %s, outcome unknown (attempt %d)\n", r.ClaimedAt.UTC().Format(time.RFC3339), r.Attempt)
			}
		}
	}
	fmt.Fprintln(w, "\nHeaders:")
	keys := make([]string, 0, len(e.Header))
	for k := range e.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range e.Header[k] {
			fmt.Fprintf(w, "  %s: %s\n", k, v)
		}
	}
	fmt.Fprintln(w, "\nEvent:")
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, e.Data, "  ", "  "); err != nil {
		fmt.Fprintf(w, "  (not JSON: %v)\n  %q\n", err, e.Data)
	} else {
		fmt.Fprintf(w, "  %s\n", pretty.String())
	}
	return nil
}

func dlqReplay(ctx context.Context, env cli.Env, args []string) error {
	fs := flag.NewFlagSet("dlq replay", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	all := fs.Bool("all", false, "replay every dead letter")
	if err := fs.Parse(args); err != nil {
		return cli.ErrUsage
	}
	if *all == (fs.NArg() > 0) {
		fmt.Fprintln(env.Stderr, "usage: ticketer dlq replay SEQ… | ticketer dlq replay --all")
		return cli.ErrUsage
	}
	var seqs []uint64
	for _, a := range fs.Args() {
		seq, err := parseSeq(a)
		if err != nil {
			return fmt.Errorf("dlq replay: %w", err)
		}
		seqs = append(seqs, seq)
	}
	r, err := newReplayer(ctx, env)
	if err != nil {
		return err
	}
	defer r.close()
	st, err := deadletters.Open(ctx, r.js)
	if err != nil {
		return err
	}
	var entries []*deadletters.Entry
	missing := 0
	if *all {
		if entries, err = deadletters.List(ctx, st); err != nil {
			return err
		}
	} else {
		for _, seq := range seqs {
			e, err := deadletters.Get(ctx, st, seq)
			if err != nil {
				return err
			}
			if e == nil {
				missing++
				fmt.Fprintf(env.Stdout, "DLQ %d: no such dead letter (already replayed or removed)\n", seq)
				continue
			}
			entries = append(entries, e)
		}
	}
	if len(entries) == 0 && missing == 0 {
		fmt.Fprintf(env.Stdout, "%s is empty: nothing to replay\n", stream.DLQ)
		return nil
	}
	// capture's dead letters are rows it could not turn into an event (or
	// whose event was too large): their values may be truncated, so a
	// ticket must never be made from them. The row is fixed at the source.
	var ours []*deadletters.Entry
	fromCapture := 0
	for _, e := range entries {
		if !e.FromCapture() {
			ours = append(ours, e)
			continue
		}
		fromCapture++
		fmt.Fprintf(env.Stdout, "DLQ %d (hash %s, %s): dead-lettered by capture (%s), not replayed\n",
			e.Seq, deadletters.ShortHash(e.Hash), deadletters.Who(e.Name, e.Email), cmp.Or(e.Reason, "?"))
	}
	res, outs, err := r.DeadLetters(ctx, st, ours)
	for _, o := range outs {
		fmt.Fprintln(env.Stdout, o.Line)
	}
	fmt.Fprintf(env.Stdout, "dlq replay: %d replayed: %d created, %d skipped (already ticketed), %d still failing (kept in %s)\n",
		res.Replayed, res.Created, res.Skipped, res.Failing, stream.DLQ)
	if fromCapture > 0 {
		fmt.Fprintf(env.Stdout, "%s\n", deadletters.CaptureSkipped(fromCapture))
	}
	if err != nil {
		return err
	}
	if fromCapture > 0 && !*all {
		return fmt.Errorf("dlq replay: %s", deadletters.CaptureSkipped(fromCapture))
	}
	if missing > 0 {
		return fmt.Errorf("dlq replay: %d sequence(s) not found", missing)
	}
	if res.Failing > 0 {
		return fmt.Errorf("dlq replay: %d still failing; see ticketer dlq list", res.Failing)
	}
	return nil
}
