package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cowjacket/formjira/internal/deadletters"
	"github.com/cowjacket/formjira/internal/jirasandbox"
	"github.com/cowjacket/formjira/internal/stats"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/ticketer/ticketertest"
	"github.com/cowjacket/formjira/internal/ticketing"
	"github.com/cowjacket/formjira/internal/trace"
)

// harness is the shared one with the commands run in-process.
type harness struct{ *ticketertest.Harness }

func newHarness(t *testing.T, opts jirasandbox.Options) *harness {
	return &harness{ticketertest.New(t, opts)}
}

// cmd runs `ticketer args…` in-process and returns its stdout.
func (h *harness) cmd(args ...string) (string, error) {
	h.T.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, h.Getenv, &out, &errOut)
	h.T.Logf("$ ticketer %s\n%s%s", strings.Join(args, " "), out.String(), errOut.String())
	return out.String(), err
}

func (h *harness) mustCmd(args ...string) string {
	h.T.Helper()
	out, err := h.cmd(args...)
	if err != nil {
		h.T.Fatalf("ticketer %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// The issue's first test: an invalid option is dead-lettered with a reason
// naming the Jira field; after the option is added in Jira, `dlq replay
// --all` creates exactly one ticket and empties the dead-letter stream;
// replaying again creates nothing. The service runs throughout.
func TestDLQReplayAfterTheOptionIsAdded(t *testing.T) {
	h := newHarness(t, jirasandbox.Options{})
	good := ticketertest.SampleEvents(t)[:3]
	bad := ticketertest.BadDepartment(t) // departmentname "Astrology", not an option of customfield_10073
	h.Publish(good...)
	h.Publish(bad)
	h.Start()
	h.WaitFor("3 tickets and 1 dead letter", 20*time.Second, func() bool { return len(h.SB.Issues()) >= 3 && len(h.DLQ()) == 1 })

	// list: one line naming the row, the field by id and name, the value.
	list := h.mustCmd("dlq", "list")
	for _, want := range []string{deadletters.ShortHash(bad.GetHash()), "customfield_10073 (Department)", "Astrology", "cannot be mapped",
		"Ahmed Byrne", "ahmed.byrne@example.com", "1 dead letter(s)"} {
		if !strings.Contains(list, want) {
			t.Errorf("dlq list lacks %q", want)
		}
	}
	var entries []deadletters.Entry
	if err := json.Unmarshal([]byte(h.mustCmd("dlq", "list", "--json")), &entries); err != nil || len(entries) != 1 {
		t.Fatalf("dlq list --json: %v, %d entries", err, len(entries))
	}
	e := entries[0]
	if e.Hash != bad.GetHash() || e.Email == "" || e.Name == "" || e.Reason != stream.ReasonUnmappable || e.Attempts != 1 || e.OrigSeq != 4 {
		t.Errorf("entry %+v", e)
	}
	show := h.mustCmd("dlq", "show", fmt.Sprint(e.Seq))
	for _, want := range []string{"Cowjacket-Reason: unmappable", "customfield_10073 (Department)", `"newusername"`, "Astrology",
		"Ticket:   none recorded", "Original: FORMS seq 4"} {
		if !strings.Contains(show, want) {
			t.Errorf("dlq show lacks %q", want)
		}
	}

	// Replaying before the fix: still failing, kept with the new attempt.
	out, err := h.cmd("dlq", "replay", "--all")
	if err == nil || !strings.Contains(out, "0 created, 0 skipped (already ticketed), 1 still failing") {
		t.Errorf("replay before the fix: err %v", err)
	}
	dl := h.DLQ()
	if len(dl) != 1 {
		t.Fatalf("%d dead letters after a failing replay, want 1", len(dl))
	}
	if d := stream.ParseDeadLetter(nats.Header(dl[0].Header)); d.Attempts != 2 || dl[0].Header.Get(stream.HeaderReplayedFrom) != fmt.Sprint(e.Seq) ||
		d.OrigSeq != 4 || !strings.Contains(strings.Join(d.FieldErrors, " "), "customfield_10073") {
		t.Errorf("replaced dead letter %+v, headers %v", d, dl[0].Header)
	}

	// The fix in Jira, then the replay: one ticket, the stream empty.
	if err := h.SB.AddOption("customfield_10073", "Astrology"); err != nil {
		t.Fatal(err)
	}
	out = h.mustCmd("dlq", "replay", "--all")
	if !strings.Contains(out, "1 replayed: 1 created, 0 skipped (already ticketed), 0 still failing") {
		t.Errorf("replay after the fix:\n%s", out)
	}
	if n := h.TicketsFor(bad); n != 1 {
		t.Errorf("%d tickets for the replayed request, want 1", n)
	}
	if d := h.DLQ(); len(d) != 0 {
		t.Errorf("%d dead letters left", len(d))
	}
	if !strings.Contains(h.mustCmd("dlq", "list"), "nothing is dead-lettered") {
		t.Error("dlq list does not say the stream is empty")
	}

	// Again: nothing to do; and replaying its FORMS event creates nothing.
	if out := h.mustCmd("dlq", "replay", "--all"); !strings.Contains(out, "nothing to replay") {
		t.Errorf("second dlq replay:\n%s", out)
	}
	out = h.mustCmd("replay", "--from-seq", "4", "--to-seq", "4")
	if !strings.Contains(out, "0 created, 1 skipped") {
		t.Errorf("replay of the fixed event:\n%s", out)
	}
	if n := len(h.SB.Issues()); n != 4 {
		t.Errorf("%d tickets, want 4", n)
	}
	h.AssertOneTicketPerHash(append(good, bad))

	// A duplicate dead letter of a request that has its ticket is removed
	// without creating anything.
	dup := stream.DeadLetter{Reason: stream.ReasonJiraRejected, Error: "old", Attempts: 1, OrigStream: stream.Forms, OrigSeq: 4, Hash: bad.GetHash()}
	data, _ := stream.Marshal(bad)
	m := dup.Msg(stream.DLQTicketer, data)
	m.Header.Set(nats.MsgIdHdr, "test-duplicate")
	ack, err := h.JS.PublishMsg(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	out = h.mustCmd("dlq", "replay", fmt.Sprint(ack.Sequence))
	if !strings.Contains(out, "0 created, 1 skipped") || len(h.DLQ()) != 0 || len(h.SB.Issues()) != 4 {
		t.Errorf("replay of a ticketed dead letter:\n%s", out)
	}
	if _, err := h.cmd("dlq", "replay", "999"); err == nil {
		t.Error("replay of a missing sequence succeeded")
	}

	// A request that has its ticket, replayed from FORMS, takes its stale
	// dead letter with it: nothing is left waiting for an operator.
	m.Header.Set(nats.MsgIdHdr, "test-duplicate-2")
	ack, err = h.JS.PublishMsg(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	out = h.mustCmd("replay", "--from-seq", "4", "--to-seq", "4")
	if want := fmt.Sprintf("its dead letter(s) DLQ %d removed", ack.Sequence); !strings.Contains(out, want) || len(h.DLQ()) != 0 || len(h.SB.Issues()) != 4 {
		t.Errorf("FORMS replay of a ticketed request with a dead letter (want %q):\n%s", want, out)
	}
}

// replay over ticketed events creates nothing; --force creates new ones
// and re-points the records.
func TestReplayFromFORMS(t *testing.T) {
	h := newHarness(t, jirasandbox.Options{})
	evs := ticketertest.SampleEvents(t)[:10]
	h.Publish(evs...)
	h.Start()
	h.WaitFor("10 tickets", 20*time.Second, func() bool { return len(h.SB.Issues()) >= 10 && h.Pending() == 0 })

	out := h.mustCmd("replay", "--from-seq", "1")
	if !strings.Contains(out, "replay (FORMS seq 1..10): 10 replayed: 0 created, 10 skipped (already ticketed), 0 still failing") ||
		strings.Count(out, "skipped, already ticketed CP-") != 10 {
		t.Errorf("replay --from-seq 1:\n%s", out)
	}
	if out := h.mustCmd("replay", "--since", "1h"); !strings.Contains(out, "0 created, 10 skipped") {
		t.Errorf("replay --since 1h:\n%s", out)
	}
	if n := len(h.SB.Issues()); n != 10 {
		t.Fatalf("%d tickets after replays without --force, want 10", n)
	}

	kv, err := h.JS.KeyValue(context.Background(), stream.TicketsBucket)
	if err != nil {
		t.Fatal(err)
	}
	before, _, _ := (stream.Tickets{KV: kv}).Get(context.Background(), evs[2].GetHash())
	out = h.mustCmd("replay", "--from-seq", "3", "--to-seq", "5", "--force")
	if !strings.Contains(out, "replay (FORMS seq 3..5, forced): 3 replayed: 3 created, 0 skipped") {
		t.Errorf("replay --force:\n%s", out)
	}
	if n := len(h.SB.Issues()); n != 13 {
		t.Errorf("%d tickets after --force over 3 events, want 13", n)
	}
	after, _, _ := (stream.Tickets{KV: kv}).Get(context.Background(), evs[2].GetHash())
	if before == nil || after == nil || after.State != stream.StateCreated || after.Key == before.Key || h.TicketsFor(evs[2]) != 2 {
		t.Errorf("record before %+v, after %+v", before, after)
	}
	if _, err := h.cmd("replay"); err == nil {
		t.Error("replay without a range succeeded")
	}
}

// TestReplayOfARepeatedRequestKeepsItsDeadLetter: FORMS holds a request
// twice (published again after the duplicate window, as a backfill may),
// and it cannot be mapped. A FORMS replay over both copies dead-letters
// the first again; the second, the same request, must not remove that dead
// letter (it would leave the request with neither a ticket nor a dead
// letter). A DLQ replay of two entries of one failing request keeps both.
func TestReplayOfARepeatedRequestKeepsItsDeadLetter(t *testing.T) {
	h := newHarness(t, jirasandbox.Options{})
	bad := ticketertest.BadDepartment(t)
	h.Publish(bad)
	m, err := stream.NewMsg(ticketertest.FormSubject, bad)
	if err != nil {
		t.Fatal(err)
	}
	m.Header.Set(nats.MsgIdHdr, "published-again-after-the-window")
	if _, err := h.JS.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	stop := h.Start()
	h.WaitFor("a dead letter, nothing pending", 20*time.Second, func() bool { return len(h.DLQ()) >= 1 && h.Pending() == 0 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	out, err := h.cmd("replay", "--from-seq", "1")
	if err == nil || !strings.Contains(out, "the same request as an event before it in this replay, which is still failing") ||
		!strings.Contains(out, "2 replayed: 0 created, 0 skipped (already ticketed), 2 still failing") {
		t.Errorf("FORMS replay of a repeated failing request (err %v):\n%s", err, out)
	}
	if n := len(h.DLQ()); n != 1 {
		t.Errorf("%d dead letters after the FORMS replay, want the request's one", n)
	}

	// A second entry of the same request (dead-lettered again from its
	// other copy), then a DLQ replay of both.
	dl := h.DLQ()[0]
	again := &nats.Msg{Subject: dl.Subject, Header: nats.Header(dl.Header), Data: dl.Data}
	again.Header.Del(nats.MsgIdHdr)
	if _, err := h.JS.PublishMsg(context.Background(), again); err != nil {
		t.Fatal(err)
	}
	out, err = h.cmd("dlq", "replay", "--all")
	if err == nil || !strings.Contains(out, "the same request as an entry before it in this replay, which is still failing; entry kept") {
		t.Errorf("DLQ replay of two entries of one failing request (err %v):\n%s", err, out)
	}
	if n := len(h.DLQ()); n != 2 {
		t.Errorf("%d dead letters after the DLQ replay, want both kept", n)
	}
	if n := h.TicketsFor(bad); n != 0 {
		t.Errorf("%d tickets for an unmappable request", n)
	}
	// The repeats were reported once, as the first copy's failure: the
	// index still says dead-lettered, one replay each, and nothing counts
	// as skipped.
	var res trace.Result
	if err := json.Unmarshal([]byte(h.mustCmd("trace", bad.GetHash(), "--json")), &res); err != nil || len(res.Journeys) != 1 {
		t.Fatalf("trace after the replays (%v): %+v", err, res.Journeys)
	}
	if j := res.Journeys[0]; j.Outcome != trace.DeadLettered || j.Delivery.Status != ticketing.StatusDeadLettered.String() || j.Delivery.Replays != 2 {
		t.Errorf("trace after the replays: outcome %s, last status %q, %d replays; want dead-lettered twice replayed", j.Outcome, j.Delivery.Status, j.Delivery.Replays)
	}
	var days []stats.DayStats
	if err := json.Unmarshal([]byte(h.mustCmd("stats", "--days", "1", "--json")), &days); err != nil || len(days) != 1 || days[0].Skipped != 0 {
		t.Errorf("stats after the replays (%v): %+v, want nothing skipped", err, days)
	}
}
