package ticketer

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/cowjacket/formjira/internal/alert"
)

type recordingNotifier struct {
	mu     sync.Mutex
	alerts []alert.Alert
}

func (r *recordingNotifier) Notify(a alert.Alert) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.alerts = append(r.alerts, a)
}

func (r *recordingNotifier) find(k alert.Kind, resolved bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range r.alerts {
		if a.Kind == k && a.Resolved == resolved {
			return true
		}
	}
	return false
}

func TestJiraDownAndBacklogConditions(t *testing.T) {
	rec := &recordingNotifier{}
	al := newAlerting(alert.Config{JiraDownAfter: 300 * time.Millisecond, BacklogGrowingAfter: 300 * time.Millisecond}, rec, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go al.watch(ctx)
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("no %s; alerts %+v", what, rec.alerts)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// A circuit open shorter than the threshold is no alert.
	al.circuit(true, "jira create: 503")
	time.Sleep(100 * time.Millisecond)
	al.circuit(false, "")
	time.Sleep(400 * time.Millisecond)
	if rec.find(alert.JiraUnreachable, false) {
		t.Fatal("a short outage raised Jira unreachable")
	}
	al.circuit(true, "jira create: 503")
	wait("Jira unreachable alert", func() bool { return rec.find(alert.JiraUnreachable, false) })
	al.circuit(false, "") // the circuit closed: Jira is back
	wait("Jira resolved alert", func() bool { return rec.find(alert.JiraUnreachable, true) })

	// Backlog: growing for longer than the threshold fires; draining resolves.
	for _, n := range []uint64{10, 20, 30} {
		al.observeBacklog(n)
		time.Sleep(200 * time.Millisecond)
	}
	al.observeBacklog(40)
	wait("backlog alert", func() bool { return rec.find(alert.BacklogGrowing, false) })
	al.observeBacklog(5)
	wait("backlog resolved", func() bool { return rec.find(alert.BacklogGrowing, true) })
	// A backlog that is worked off (back to where it was) within the
	// threshold raises nothing.
	rec2 := &recordingNotifier{}
	al2 := newAlerting(alert.Config{BacklogGrowingAfter: 300 * time.Millisecond}, rec2, slog.New(slog.DiscardHandler))
	for _, n := range []uint64{0, 5, 3, 0, 6, 2, 0, 4, 1, 0, 7, 0} {
		al2.observeBacklog(n)
		time.Sleep(60 * time.Millisecond)
	}
	if len(rec2.alerts) != 0 {
		t.Errorf("fluctuating backlog alerted: %+v", rec2.alerts)
	}
}
