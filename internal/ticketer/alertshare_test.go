package ticketer

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/alert"
	"github.com/cowjacket/formjira/internal/localnats"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/testsupport"
)

type sent struct {
	mu  sync.Mutex
	all []alert.Alert
}

func (r *sent) Notify(a alert.Alert) {
	r.mu.Lock()
	r.all = append(r.all, a)
	r.mu.Unlock()
}

func (r *sent) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.all)
}

// TestSharedAlertsOneReplicaAnnounces: three replicas seeing the same
// outage send one "Jira unreachable" and one RESOLVED between them, not
// three of each; once `every` has passed a still firing kind may be sent
// again (by one); dead letters are each replica's own and all pass.
func TestSharedAlertsOneReplicaAnnounces(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kv := jiraKV(t)
	const every = 300 * time.Millisecond
	var outs [3]*sent
	var reps [3]*sharedAlerts
	for i := range reps {
		outs[i] = &sent{}
		reps[i] = newSharedAlerts(outs[i], every, slog.New(slog.NewTextHandler(io.Discard, nil)))
		reps[i].attach(kv)
		go reps[i].run(ctx)
	}
	total := func() int { return outs[0].count() + outs[1].count() + outs[2].count() }
	settle := func(want int, what string) {
		t.Helper()
		testsupport.WaitFor(t, what, 5*time.Second, func() bool { return total() >= want })
		time.Sleep(100 * time.Millisecond) // and no more than want
		if n := total(); n != want {
			t.Fatalf("%s: %d sent in all, want %d", what, n, want)
		}
	}
	down := alert.Alert{Kind: alert.JiraUnreachable, Summary: "Jira unreachable"}
	up := down
	up.Resolved = true
	for _, r := range reps {
		r.Notify(down)
	}
	settle(1, "three replicas see Jira down")
	for _, r := range reps {
		r.Notify(up)
	}
	settle(2, "three replicas see it back")
	for _, r := range reps {
		r.Notify(up)
	}
	settle(2, "a RESOLVED with nothing firing")
	for _, r := range reps {
		r.Notify(down)
	}
	settle(3, "down again")
	time.Sleep(every)
	reps[1].Notify(down)
	settle(4, "still down after every")
	for _, r := range reps {
		r.Notify(alert.Alert{Kind: alert.DeadLetter, Summary: "unmappable"})
	}
	settle(7, "each replica's dead letter")
}

type sinkRec struct {
	mu   sync.Mutex
	subj []string
}

func (s *sinkRec) Send(_ context.Context, subject, _ string, _ []alert.Alert) error {
	s.mu.Lock()
	s.subj = append(s.subj, subject)
	s.mu.Unlock()
	return nil
}

func (s *sinkRec) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.subj...)
}

func jiraKV(t *testing.T) jetstream.KeyValue {
	t.Helper()
	nc := localnats.StartTB(t).ConnectTB(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := stream.EnsureJira(context.Background(), js, stream.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// TestSharedAlertsResolvedReachesTheWire: behind each replica the real
// Alerter, which sends a RESOLVED only for what it announced. When the
// replica that did not send the firing wins the RESOLVED, or when the
// firing went out unclaimed (before FORMS_JIRA was attached), the
// RESOLVED still goes out, once.
func TestSharedAlertsResolvedReachesTheWire(t *testing.T) {
	down := alert.Alert{Kind: alert.JiraUnreachable, Summary: "Jira unreachable"}
	up := down
	up.Resolved = true
	wait := func() { time.Sleep(300 * time.Millisecond) }
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	t.Run("another replica wins the RESOLVED", func(t *testing.T) {
		kv := jiraKV(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var sinks [2]*sinkRec
		var reps [2]*sharedAlerts
		for i := range reps {
			sinks[i] = &sinkRec{}
			al := alert.New(alert.Config{}, nil, sinks[i])
			go al.Run(ctx)
			reps[i] = newSharedAlerts(al, time.Hour, quiet)
			reps[i].attach(kv)
			go reps[i].run(ctx)
		}
		reps[0].Notify(down)
		wait()
		reps[1].Notify(down)
		wait()
		reps[1].Notify(up) // B sees Jira back first
		wait()
		reps[0].Notify(up)
		testsupport.WaitFor(t, "the firing and the RESOLVED", 5*time.Second, func() bool { return len(sinks[0].all())+len(sinks[1].all()) >= 2 })
		wait() // and no more
		a, b := sinks[0].all(), sinks[1].all()
		if len(a) != 1 || len(b) != 1 || !strings.Contains(b[0], "RESOLVED") {
			t.Errorf("A sent %q, B sent %q; want A the firing, B the RESOLVED", a, b)
		}
	})
	t.Run("the firing went out unclaimed", func(t *testing.T) {
		kv := jiraKV(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		sink := &sinkRec{}
		al := alert.New(alert.Config{}, nil, sink)
		go al.Run(ctx)
		s := newSharedAlerts(al, time.Hour, quiet)
		go s.run(ctx)
		s.Notify(down)
		wait()
		s.attach(kv)
		s.Notify(up)
		testsupport.WaitFor(t, "the RESOLVED", 5*time.Second, func() bool { return len(sink.all()) >= 2 })
		if got := sink.all(); len(got) != 2 {
			t.Errorf("sent %q, want the firing and its RESOLVED", got)
		}
	})
}

// TestSharedAlertsLoseNone: a storm beyond the claim queue is forwarded
// unclaimed, and what is still queued when the claims end (shutdown) is
// forwarded too: every alert reaches the sender.
func TestSharedAlertsLoseNone(t *testing.T) {
	out := &sent{}
	s := newSharedAlerts(out, time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)))
	const n = 100 // more than the queue holds
	for i := range n {
		s.Notify(alert.Alert{Kind: alert.BacklogGrowing, Summary: strconv.Itoa(i)})
	}
	if got := out.count(); got != n-cap(s.queue) {
		t.Errorf("%d forwarded past a full queue, want %d", got, n-cap(s.queue))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // shutdown before the claims ran
	s.run(ctx)
	if got := out.count(); got != n {
		t.Errorf("%d of %d alerts reached the sender", got, n)
	}
}
