package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cowjacket/formjira/internal/jirasandbox"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/ticketer/ticketertest"
)

// TestDLQReplaySkipsCaptureDeadLetters: capture's dead letters (rows it
// could not turn into a whole event: values may be truncated) are never
// turned into tickets. `dlq replay --all` replays ticketer's entries, skips
// capture's with advice and exits 0; `dlq replay SEQ` on a capture entry
// refuses with the same advice.
func TestDLQReplaySkipsCaptureDeadLetters(t *testing.T) {
	h := newHarness(t, jirasandbox.Options{})
	evs := ticketertest.SampleEvents(t)[:2]
	ctx := context.Background()
	publish := func(d stream.DeadLetter, subject string, body []byte) uint64 {
		t.Helper()
		ack, err := h.JS.PublishMsg(ctx, d.Msg(subject, body))
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}
	now := time.Now()
	// A too-large row as capture dead-letters it: a whole-looking event
	// whose values were cut.
	captured, err := stream.Marshal(evs[0])
	if err != nil {
		t.Fatal(err)
	}
	captureSeq := publish(stream.DeadLetter{Reason: stream.ReasonTooLarge, Error: "event is 2 MB, the stream takes 1 MB; values truncated",
		Attempts: 1, Hash: evs[0].GetHash(), LastFailure: now, DeadLetteredBy: "capture"}, stream.DLQCapture, captured)
	ours, err := stream.Marshal(evs[1])
	if err != nil {
		t.Fatal(err)
	}
	publish(stream.DeadLetter{Reason: stream.ReasonExhausted, Error: "jira create: 503", Attempts: 5, OrigStream: stream.Forms, OrigSeq: 7,
		OrigSubject: ticketertest.FormSubject, Hash: evs[1].GetHash(), LastFailure: now, DeadLetteredBy: "ticketer"}, stream.DLQTicketer, ours)

	const advice = "1 capture dead letter(s) skipped: fix the row in the database, then `capture backfill`"
	out, err := h.cmd("dlq", "replay", "--all")
	if err != nil {
		t.Errorf("dlq replay --all: %v; want success (nothing failed)", err)
	}
	if !strings.Contains(out, advice) || !strings.Contains(out, "1 replayed: 1 created") {
		t.Errorf("dlq replay --all output lacks %q or one created ticket", advice)
	}
	if n := h.TicketsFor(evs[0]); n != 0 {
		t.Errorf("%d tickets from capture's dead letter, want none", n)
	}
	if n := h.TicketsFor(evs[1]); n != 1 {
		t.Errorf("%d tickets from ticketer's dead letter, want 1", n)
	}
	if dl := h.DLQ(); len(dl) != 1 || dl[0].Sequence != captureSeq {
		t.Errorf("FORMS_DLQ holds %d entries, want capture's only", len(dl))
	}

	out, err = h.cmd("dlq", "replay", fmt.Sprint(captureSeq))
	if err == nil || !strings.Contains(err.Error(), advice) || !strings.Contains(out, "dead-lettered by capture") {
		t.Errorf("dlq replay %d: %v; want a refusal naming %q", captureSeq, err, advice)
	}
	if n := len(h.SB.Issues()); n != 1 || len(h.DLQ()) != 1 {
		t.Errorf("%d tickets, %d dead letters after the refused replay; want 1, 1", n, len(h.DLQ()))
	}
}
