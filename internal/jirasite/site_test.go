package jirasite

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/jira"
	"github.com/cowjacket/formjira/internal/localnats"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/testsupport"
)

var down = &jira.APIError{Op: jira.OpBulkCreate, Status: http.StatusServiceUnavailable}

// jiraHealth is a Jira whose health a test switches, counting probes.
type jiraHealth struct {
	up     atomic.Bool
	probes atomic.Int64
}

func (j *jiraHealth) probe(ctx context.Context) error {
	j.probes.Add(1)
	if j.up.Load() {
		return nil
	}
	return &jira.APIError{Op: jira.OpMyself, Status: http.StatusServiceUnavailable}
}

func bucket(t *testing.T) jetstream.KeyValue {
	t.Helper()
	ns := localnats.StartTB(t)
	nc := ns.ConnectTB(t)
	js, _ := jetstream.New(nc)
	kv, err := stream.EnsureJira(context.Background(), js, stream.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

func site(t *testing.T, j *jiraHealth, kv jetstream.KeyValue) *Site {
	t.Helper()
	s := New(j.probe, jira.NewPacer(0), slog.New(slog.DiscardHandler),
		Options{ProbeMin: 50 * time.Millisecond, ProbeMax: 200 * time.Millisecond, ProbeTimeout: time.Second, Heartbeat: 100 * time.Millisecond})
	if kv != nil {
		s.Attach(kv)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

// One bad request failing among good ones, or failures while the health
// probe answers, do not open the circuit.
func TestFailuresOfRequestsWhileJiraAnswersKeepItClosed(t *testing.T) {
	j := &jiraHealth{}
	j.up.Store(true)
	s := site(t, j, nil)
	for range 10 {
		s.Result(jira.OpBulkCreate, down)
		s.Result(jira.OpBulkCreate, nil) // another event's success
	}
	for range 5 {
		s.Result(jira.OpBulkCreate, down)
	}
	testsupport.WaitFor(t, "the suspicion's probe", 2*time.Second, func() bool { return j.probes.Load() >= 1 })
	time.Sleep(100 * time.Millisecond)
	if up, st, _, _ := s.Up(); !up {
		t.Errorf("circuit %v after failures that the probe did not confirm", st)
	}
	if err := s.Gate(jira.OpBulkCreate); err != nil {
		t.Errorf("gate refused while Jira answers: %v", err)
	}
}

// An outage seen by one replica opens the circuit for all; while open,
// only one replica probes at a time, at a bounded rate; the first probe
// that succeeds closes it for all.
func TestOutageOpensForAllAndOneProbes(t *testing.T) {
	kv := bucket(t)
	j := &jiraHealth{}
	var sites []*Site
	for range 3 {
		sites = append(sites, site(t, j, kv))
	}
	for range 3 {
		sites[0].Result(jira.OpBulkCreate, down)
	}
	testsupport.WaitFor(t, "every replica sees the circuit open", 5*time.Second, func() bool {
		for _, s := range sites {
			if up, _, _, _ := s.Up(); up {
				return false
			}
		}
		return true
	})
	for _, s := range sites {
		if err := s.Gate(jira.OpBulkCreate); !errors.Is(err, jira.ErrCircuitOpen) {
			t.Errorf("gate while open: %v", err)
		}
	}
	before := j.probes.Load()
	time.Sleep(time.Second)
	// Backoff 50ms doubling to 200ms, one replica at a time: about 6 probes
	// in a second, never 3 replicas × every 50 ms.
	if n := j.probes.Load() - before; n > 10 || n < 2 {
		t.Errorf("%d probes in a second while open, want a few (one replica at a time, with backoff)", n)
	}
	waiting := make(chan error, 1)
	go func() { waiting <- sites[2].WaitUp(context.Background()) }()
	j.up.Store(true)
	testsupport.WaitFor(t, "every replica sees the circuit closed", 5*time.Second, func() bool {
		for _, s := range sites {
			if up, _, _, _ := s.Up(); !up {
				return false
			}
		}
		return true
	})
	if err := <-waiting; err != nil {
		t.Errorf("WaitUp: %v", err)
	}
}

// A replica whose open circuit never reached FORMS_JIRA (the write failed,
// or the entry is gone) keeps it open until a probe succeeds, instead of
// taking the missing entry for "closed".
func TestOpenCircuitWithoutSharedEntryWaitsForAProbe(t *testing.T) {
	kv := bucket(t)
	j := &jiraHealth{}
	s := site(t, j, kv)
	for range 3 {
		s.Result(jira.OpBulkCreate, down)
	}
	testsupport.WaitFor(t, "the circuit open", 5*time.Second, func() bool { up, _, _, _ := s.Up(); return !up })
	if err := kv.Purge(context.Background(), circuitKey); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // several probe turns, Jira still down
	if up, _, _, _ := s.Up(); up {
		t.Fatal("closed without a successful probe")
	}
	j.up.Store(true)
	testsupport.WaitFor(t, "closed after Jira answers", 5*time.Second, func() bool { up, _, _, _ := s.Up(); return up })
}

// A quota 429 one replica meets pauses every replica until Jira's reset.
func TestQuotaPauseIsShared(t *testing.T) {
	kv := bucket(t)
	j := &jiraHealth{}
	j.up.Store(true)
	a, b := site(t, j, kv), site(t, j, kv)
	b.pacer.Answered(jira.OpSearch) // Jira answered it before: no first-request wait
	if err := b.pacer.Wait(context.Background(), jira.OpSearch); err != nil {
		t.Fatal(err)
	}
	a.pacer.Throttled(jira.OpBulkCreate, 2*time.Second, "jira-quota-tenant-based", 0)
	testsupport.WaitFor(t, "the other replica paused too", 2*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		return b.pacer.Wait(ctx, jira.OpSearch) != nil // any lane: a quota is the site's
	})
	start := time.Now()
	if err := b.pacer.Wait(context.Background(), jira.OpSearch); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2500*time.Millisecond {
		t.Errorf("the other replica waited %v, more than the pause", d)
	}
}

// The replicas see each other: each paces at its share of the site rate,
// and one's slow-down is everyone's.
func TestReplicasShareThePace(t *testing.T) {
	kv := bucket(t)
	j := &jiraHealth{}
	j.up.Store(true)
	a, b := site(t, j, kv), site(t, j, kv)
	_ = b
	testsupport.WaitFor(t, "two replicas counted", 3*time.Second, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.lastShare == 0.5
	})
	a.pacer.Adopt(jira.OpBulkCreate, 20, 0)
	time.Sleep(1100 * time.Millisecond) // a lane slows once a second at most
	a.pacer.Throttled(jira.OpBulkCreate, time.Second, "jira-burst-based", 0)
	testsupport.WaitFor(t, "the other replica slows too", 3*time.Second, func() bool {
		return b.pacer.Rate(jira.OpBulkCreate) == 19
	})
}
