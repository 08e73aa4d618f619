package ticketer_test

import (
	"bytes"
	"context"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cowjacket/formjira/internal/jirasandbox"
	"github.com/cowjacket/formjira/internal/stats"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/ticketer/ticketertest"
)

// outageEnv: deliveries that would all be used up within a few seconds.
// twoDeliveries: an event's own failures dead-letter it at its second.
func twoDeliveries(h *harness) {
	h.Env["MAX_DELIVER"] = "2"
	h.Env["BACKOFF"] = "100ms"
}

// logsOnFailure logs the tail of the service's log if t fails.
func logsOnFailure(t *testing.T, h *harness) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(h.Logs.String()[max(0, len(h.Logs.String())-6000):])
		}
	})
}

func outageEnv(h *harness) {
	h.Env["MAX_DELIVER"] = "3"
	h.Env["BACKOFF"] = "100ms,200ms"
	h.Env["RETRY_WINDOW"] = "500ms"
	h.Env["ACK_WAIT"] = "2s"
	h.Env["JIRA_TIMEOUT"] = "1s"
}

// TestJiraOutageCostsOnlyTime: three replicas, MAX_DELIVER=3, and a Jira
// failing every call for longer than all deliveries would take. Nothing is
// dead-lettered; meanwhile the replicas together send Jira only health
// probes, at a bounded rate; when Jira recovers every request becomes
// exactly one ticket, with no operator action.
func TestJiraOutageCostsOnlyTime(t *testing.T) {
	t.Parallel() // waits on Jira and NATS, not the CPU
	h := newHarness(t, jirasandbox.Options{})
	outageEnv(h)
	evs := ticketertest.SampleEvents(t)[:30]
	h.Publish(evs[:10]...)
	for range 3 {
		h.Start()
	}
	h.WaitFor("the first 10 tickets", 30*time.Second, func() bool { return len(h.SB.Issues()) == 10 })
	h.SB.SetOutage(jirasandbox.Outage503)
	down := time.Now()
	h.Publish(evs[10:]...)
	h.WaitFor("the circuit open", 10*time.Second, func() bool { return strings.Contains(h.Logs.String(), "JIRA UNREACHABLE") })
	opened := time.Now()
	time.Sleep(8 * time.Second) // far beyond 3 deliveries of 500 ms with 100–200 ms backoff
	if dl := h.DLQ(); len(dl) != 0 {
		t.Fatalf("%d dead letters during the outage: %s", len(dl), stream.ParseDeadLetter(nats.Header(dl[0].Header)).Error)
	}
	h.SB.SetOutage(jirasandbox.OutageNone)
	up := time.Now()
	var probes, other int
	for _, r := range h.SB.Requests() {
		if r.Time.Before(opened.Add(time.Second)) || r.Time.After(up) {
			continue // calls on the wire as the circuit opened
		}
		if strings.HasSuffix(r.Path, "/myself") {
			probes++
		} else {
			other++
			t.Errorf("%s %s reached Jira while the circuit was open", r.Method, r.Path)
		}
	}
	// Backoff from 1 s doubling to 30 s, one replica at a time: a handful in
	// 7 s, whatever the number of replicas.
	if probes == 0 || probes > 8 {
		t.Errorf("%d probes in %v while open, want a few", probes, up.Sub(opened.Add(time.Second)))
	}
	h.WaitFor("every ticket after the outage", 45*time.Second, func() bool { return len(h.SB.Issues()) >= len(evs) && h.Pending() == 0 })
	time.Sleep(300 * time.Millisecond)
	h.AssertOneTicketPerHash(evs)
	if dl := h.DLQ(); len(dl) != 0 {
		t.Errorf("%d dead letters after the outage, want none", len(dl))
	}
	if !strings.Contains(h.Logs.String(), "circuit closed") {
		t.Error("no log line for the circuit closing")
	}
	t.Logf("outage %v; %d probes while open; circuit opened %v after it began", up.Sub(down).Round(time.Millisecond), probes, opened.Sub(down).Round(time.Millisecond))
}

// TestOutageDuringRetriesDoesNotCount: an event Jira always fails on, while
// it works for the others, is dead-lettered after MAX_DELIVER failed
// deliveries — but an outage in between counts for nothing: its dead
// letter comes only after the outage, with attempts = MAX_DELIVER.
func TestOutageDuringRetriesDoesNotCount(t *testing.T) {
	t.Parallel() // waits on Jira and NATS, not the CPU
	h := newHarness(t, jirasandbox.Options{})
	outageEnv(h)
	twoDeliveries(h)
	evs := ticketertest.SampleEvents(t)[:3]
	bad := evs[0]
	h.Fault(func(r *http.Request, body []byte) int {
		if strings.Contains(r.URL.Path, "/issue") && bytes.Contains(body, []byte(bad.GetHash())) {
			return http.StatusInternalServerError
		}
		return 0
	})
	h.Publish(evs...)
	h.Start()
	tickets, err := stream.LookupTickets(context.Background(), h.JS)
	if err != nil {
		t.Fatal(err)
	}
	logsOnFailure(t, h)
	h.WaitFor("the bad event's first failure counted", 30*time.Second, func() bool {
		r, _, _ := tickets.Get(context.Background(), bad.GetHash())
		return r != nil && r.Failures == 1
	})
	h.SB.SetOutage(jirasandbox.Outage503)
	h.WaitFor("the circuit open", 10*time.Second, func() bool { return strings.Contains(h.Logs.String(), "JIRA UNREACHABLE") })
	time.Sleep(4 * time.Second)
	if dl := h.DLQ(); len(dl) != 0 {
		t.Fatalf("dead-lettered during the outage (attempts %d): the outage counted", stream.ParseDeadLetter(nats.Header(dl[0].Header)).Attempts)
	}
	h.SB.SetOutage(jirasandbox.OutageNone)
	recovered := time.Now()
	h.WaitFor("the bad event dead-lettered", 40*time.Second, func() bool { return len(h.DLQ()) == 1 })
	d := stream.ParseDeadLetter(nats.Header(h.DLQ()[0].Header))
	if d.Reason != stream.ReasonExhausted || d.Attempts != 2 || d.Hash != bad.GetHash() || d.LastFailure.Before(recovered) {
		t.Errorf("dead letter %q attempts %d hash %s last failure %v (recovered %v); want exhausted, 2, after the outage",
			d.Reason, d.Attempts, d.Hash[:12], d.LastFailure, recovered)
	}
	h.WaitFor("the good tickets", 20*time.Second, func() bool { return len(h.SB.Issues()) == 2 })
}

// TestOutageBeforeTheCircuitOpensCountsNothing: Jira answers every call 503
// with a Retry-After longer than RETRY_WINDOW, so deliveries end before the
// circuit has seen enough failures to open. They still count for nothing
// (issue 14): nothing else was answered while the events failed.
func TestOutageBeforeTheCircuitOpensCountsNothing(t *testing.T) {
	t.Parallel() // waits on Jira and NATS, not the CPU
	h := newHarness(t, jirasandbox.Options{})
	outageEnv(h)
	twoDeliveries(h)
	evs := ticketertest.SampleEvents(t)[:12]
	h.Publish(evs[:4]...)
	h.Start()
	logsOnFailure(t, h)
	h.WaitFor("the first 4 tickets", 30*time.Second, func() bool { return len(h.SB.Issues()) == 4 })
	h.SB.SetOutageRetryAfter(3 * time.Second)
	h.SB.SetOutage(jirasandbox.Outage503)
	h.Publish(evs[4:]...)
	h.WaitFor("the circuit open", 20*time.Second, func() bool { return strings.Contains(h.Logs.String(), "JIRA UNREACHABLE") })
	time.Sleep(3 * time.Second)
	tickets, err := stream.LookupTickets(context.Background(), h.JS)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs[4:] {
		if r, _, _ := tickets.Get(context.Background(), ev.GetHash()); r != nil && r.Failures != 0 {
			t.Errorf("%s: %d failures counted during the outage", ev.GetHash()[:12], r.Failures)
		}
	}
	h.SB.SetOutage(jirasandbox.OutageNone)
	h.WaitFor("every ticket after the outage", 45*time.Second, func() bool { return len(h.SB.Issues()) >= len(evs) && h.Pending() == 0 })
	time.Sleep(300 * time.Millisecond)
	h.AssertOneTicketPerHash(evs)
	if dl := h.DLQ(); len(dl) != 0 {
		t.Errorf("%d dead letters, want none", len(dl))
	}
}

// TestShutdownDuringOutageCountsNoFailure: a replica stopped while Jira is
// down gives its held events back (nak'ed, redelivered at once) and counts
// none of them as failed, in the daily counters or its batch log line.
func TestShutdownDuringOutageCountsNoFailure(t *testing.T) {
	t.Parallel() // waits on Jira and NATS, not the CPU
	h := newHarness(t, jirasandbox.Options{})
	logsOnFailure(t, h)
	outageEnv(h)
	evs := ticketertest.SampleEvents(t)[:8]
	h.Publish(evs[0])
	stop := h.Start()
	// Settled, not only made in Jira: a read-back the outage broke would
	// be a failure before any circuit opened.
	h.WaitFor("the first ticket, settled", 20*time.Second, func() bool {
		return len(h.SB.Issues()) == 1 && strings.Contains(h.Logs.String(), "batch complete: 1 successful")
	})
	h.SB.SetOutage(jirasandbox.Outage503)
	h.Publish(evs[1:]...)
	h.WaitFor("the circuit open", 10*time.Second, func() bool { return strings.Contains(h.Logs.String(), "JIRA UNREACHABLE") })
	time.Sleep(500 * time.Millisecond) // the batch held
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// A delivery may have failed before the circuit opened (that is a
	// failure); the held ones at shutdown are not: the last batch says
	// "0 failed … held", and the daily counters add up the batch lines.
	batches := regexp.MustCompile(`batch complete: (\d+) successful, (\d+) failed, \d+ skipped(, \d+ held for Jira)?`).FindAllStringSubmatch(h.Logs.String(), -1)
	failed, heldLine := 0, false
	for _, b := range batches {
		n, _ := strconv.Atoi(b[2])
		failed += n
		heldLine = heldLine || b[3] != "" && n == 0
	}
	if !heldLine {
		t.Error("no batch line naming the held events with no failure")
	}
	days, err := stats.Read(context.Background(), h.JS, time.Now().UTC(), 1)
	if err != nil || len(days) != 1 {
		t.Fatalf("stats: %v %+v", err, days)
	}
	if d := days[0]; d.Failed != int64(failed) || d.Created != 1 {
		t.Errorf("today: %d created, %d failed; want 1 created and the %d failures the batch lines name (none for the events held at shutdown)", d.Created, d.Failed, failed)
	}
}
