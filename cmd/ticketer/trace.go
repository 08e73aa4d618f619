package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cowjacket/formjira/internal/cli"
	"github.com/cowjacket/formjira/internal/deadletters"
	"github.com/cowjacket/formjira/internal/table"
	"github.com/cowjacket/formjira/internal/trace"
)

var traceCommand = cli.Command{
	Name:    "trace",
	Args:    "QUERY [--json]",
	Summary: "one request's journey: hash (8+ hex digits), e-mail, name, id=N or Jira key → row, FORMS, attempts, ticket or dead letter",
	Run:     runTrace,
}

// Widths of the cut cells (the full values are in --json).
const (
	traceNameWidth   = 40
	traceEmailWidth  = 40
	traceDetailWidth = 160
)

func runTrace(ctx context.Context, env cli.Env, args []string) error {
	fs := flag.NewFlagSet("trace", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	asJSON := fs.Bool("json", false, "print the result as JSON (every value whole)")
	// The query may come before or after --json.
	var words []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return cli.ErrUsage
		}
		if fs.NArg() == 0 {
			break
		}
		words, args = append(words, fs.Arg(0)), fs.Args()[1:]
	}
	q := strings.Join(words, " ")
	if strings.TrimSpace(q) == "" {
		fmt.Fprintln(env.Stderr, "usage: ticketer trace QUERY [--json]   (QUERY: a record hash or 8+ hex digits of it, an e-mail, part of a name, id=N, a Jira key)")
		return cli.ErrUsage
	}
	cfg, nc, js, err := connect(ctx, env)
	if err != nil {
		return err
	}
	defer nc.Close()
	tr, err := trace.Open(ctx, js, cfg.JiraURL)
	if err != nil {
		return err
	}
	res, err := tr.Find(ctx, q)
	if err != nil {
		return fmt.Errorf("trace: %w", err)
	}
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	printTrace(env.Stdout, res)
	return nil
}

func printTrace(w io.Writer, res *trace.Result) {
	q := res.Query
	if res.NotCaptured != nil {
		fmt.Fprintf(w, "Nothing matches %s %q (%s).\n", q.Kind, q.Term, res.Took)
		fmt.Fprintln(w, table.Cut(res.NotCaptured.Note, 0))
		if len(res.NotCaptured.Captures) > 0 {
			fmt.Fprintln(w)
			t := table.New(w, table.Column{Title: "CAPTURE", Max: 32}, table.Column{Title: "ROLE"}, table.Column{Title: "TABLE", Max: 40},
				table.Column{Title: "CONFIRMED LSN"}, table.Column{Title: "MOVED"}, table.Column{Title: "SLOT LAG"}, table.Column{Title: "LAST ERROR", Max: 80})
			for _, c := range res.NotCaptured.Captures {
				moved := "-"
				if !c.ConfirmedAt.IsZero() {
					moved = time.Since(c.ConfirmedAt).Round(time.Second).String() + " ago"
				}
				t.Row(c.Instance, c.Role, c.Table, cmp.Or(c.ConfirmedLSN, "-"), moved, fmt.Sprintf("%d B", c.SlotLagBytes), cmp.Or(c.LastError, "-"))
			}
			t.Flush()
		}
		return
	}
	fmt.Fprintf(w, "%d request(s) match %s %q (%s)", res.Matches, q.Kind, q.Term, res.Took)
	if len(res.Journeys) < res.Matches {
		fmt.Fprintf(w, "; the latest %d shown", len(res.Journeys))
	}
	fmt.Fprintln(w)
	if len(res.Journeys) > 1 {
		fmt.Fprintln(w)
		t := table.New(w, table.Column{Title: "HASH"}, table.Column{Title: "NAME", Max: traceNameWidth}, table.Column{Title: "EMAIL", Max: traceEmailWidth},
			table.Column{Title: "FORMS"}, table.Column{Title: "OUTCOME", Max: 80})
		for _, j := range res.Journeys {
			seq := "-"
			if j.Forms != nil {
				seq = fmt.Sprint(j.Forms.Seq)
			}
			t.Row(deadletters.ShortHash(j.Hash), cmp.Or(j.Name, "-"), cmp.Or(j.Email, "-"), seq, j.Summary)
		}
		t.Flush()
	}
	for _, j := range res.Journeys {
		fmt.Fprintf(w, "\n%s, hash %s: %s\n", table.Cut(deadletters.Who(j.Name, j.Email), traceNameWidth+traceEmailWidth), j.Hash, strings.ToUpper(strings.ReplaceAll(j.Outcome, "_", " ")))
		t := table.New(w, table.Column{Title: "  WHEN (UTC)"}, table.Column{Title: "STEP"}, table.Column{Title: "DETAIL", Max: traceDetailWidth})
		for _, s := range j.Steps {
			at := "-"
			if !s.At.IsZero() {
				at = s.At.UTC().Format("2006-01-02 15:04:05.000")
			}
			t.Row("  "+at, s.What, s.Detail)
		}
		if dl := j.DeadLetter; dl != nil {
			for _, fe := range dl.FieldErrors {
				t.Row("  ", "field refused", fe)
			}
		}
		t.Flush()
		switch {
		case j.Ticket != nil && j.Ticket.URL != "":
			fmt.Fprintf(w, "  → %s\n", j.Ticket.URL)
		case j.DeadLetter != nil:
			fmt.Fprintf(w, "  → fix the cause, then: %s\n", j.DeadLetter.Replay)
		}
	}
}
