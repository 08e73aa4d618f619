package labeledit_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cowjacket/formjira/internal/jira"
	"github.com/cowjacket/formjira/internal/labeledit"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/ticketing/ticketingtest"
)

type fixture struct {
	recs     *ticketingtest.Records
	jira     *ticketingtest.Jira
	pending  prometheus.Gauge
	failures *prometheus.CounterVec
	ed       *labeledit.Editor

	mu     sync.Mutex
	edited map[string][]string // key → labels added
	refuse map[string]error    // key → Jira's answer to every edit
}

// newFixture is an editor whose Jira answers the nth AddLabels of a key
// with answers[n-1] (nil beyond them).
func newFixture(t *testing.T, answers ...error) *fixture {
	t.Helper()
	f := &fixture{recs: ticketingtest.NewRecords(), edited: map[string][]string{}, refuse: map[string]error{},
		pending:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "pending"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "failures"}, []string{"class"})}
	calls := map[string]int{}
	f.jira = &ticketingtest.Jira{AddLabelsFunc: func(_ context.Context, key string, labels ...string) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		calls[key]++
		if err := f.refuse[key]; err != nil {
			return err
		}
		if n := calls[key]; n <= len(answers) && answers[n-1] != nil {
			return answers[n-1]
		}
		f.edited[key] = append(f.edited[key], labels...)
		return nil
	}}
	ed, err := labeledit.New(labeledit.Config{Jobs: f.recs, Records: f.recs, Jira: f.jira,
		Pending: f.pending, Failures: f.failures, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	f.ed = ed
	return f
}

// created stores hash's record as created at key with its labels pending,
// and the marker when marker is set; it returns the job.
func (f *fixture) created(hash, key string, marker bool) stream.LabelJob {
	job := stream.LabelJob{Hash: hash, Key: key, Labels: []string{"cowjacket", "cowjacket-" + hash[:8]}, Since: time.Now()}
	f.recs.Set(hash, stream.Record{State: stream.StateCreated, Key: key, LabelsPending: true})
	if marker {
		f.ed.Mark(context.Background(), job)
	}
	return job
}

func (f *fixture) markers(t *testing.T) []string {
	t.Helper()
	jobs, err := f.recs.LabelJobs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for j, err := range jobs {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, j.Hash)
	}
	return out
}

const hashA, hashB = "aaaaaaaa11111111", "bbbbbbbb22222222"

// TestSubmitNow: without Start an edit is made in the caller, a few tries
// at most; success clears the record's flag and the marker, a refusal or
// exhausted retries leave both for the next time the hash is seen.
func TestSubmitNow(t *testing.T) {
	retryable := fmt.Errorf("edit: 503: %w", jira.ErrRetryable)
	refused := fmt.Errorf("edit: 400 labels: %w", jira.ErrPermanent)
	for _, tc := range []struct {
		name                string
		answers             []error
		wantEdited, pending bool
		transient, perm     float64
	}{
		{"accepted", nil, true, false, 0, 0},
		{"accepted after a 503", []error{retryable}, true, false, 1, 0},
		{"refused", []error{refused}, false, true, 0, 1},
		{"unavailable four times", []error{retryable, retryable, retryable, retryable}, false, true, 4, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.answers...)
			job := f.created(hashA, "CP-7", true)
			f.ed.Submit(context.Background(), job)
			if got := slices.Equal(f.edited["CP-7"], job.Labels); got != tc.wantEdited {
				t.Errorf("labels added %v, want added %v", f.edited["CP-7"], tc.wantEdited)
			}
			if got := f.recs.Record(hashA).LabelsPending; got != tc.pending {
				t.Errorf("record labels_pending %v, want %v", got, tc.pending)
			}
			if got := len(f.markers(t)) == 1; got != tc.pending {
				t.Errorf("markers %v, want one left: %v", f.markers(t), tc.pending)
			}
			if got := testutil.ToFloat64(f.failures.WithLabelValues("transient")); got != tc.transient {
				t.Errorf("transient failures %v, want %v", got, tc.transient)
			}
			if got := testutil.ToFloat64(f.failures.WithLabelValues("permanent")); got != tc.perm {
				t.Errorf("permanent failures %v, want %v", got, tc.perm)
			}
		})
	}
}

// TestDoneLeavesAnotherTicketsRecord: when the record names another key
// (a forced re-creation since), the edit of the old ticket must not clear
// the new one's flag; the marker, done with, goes.
func TestDoneLeavesAnotherTicketsRecord(t *testing.T) {
	f := newFixture(t)
	job := f.created(hashA, "CP-7", true)
	f.recs.Set(hashA, stream.Record{State: stream.StateCreated, Key: "CP-9", LabelsPending: true})
	f.ed.Submit(context.Background(), job)
	if r := f.recs.Record(hashA); !r.LabelsPending || r.Key != "CP-9" {
		t.Errorf("record %+v, want CP-9's still pending", r)
	}
	if m := f.markers(t); len(m) != 0 {
		t.Errorf("markers %v left", m)
	}
}

// TestRunDrainsMarkersAndQueue: once started, Submit only queues; Run
// adds the markers earlier runs left (once each) and drains both; a
// refused edit stays counted as pending, its marker kept.
func TestRunDrainsMarkersAndQueue(t *testing.T) {
	refused := fmt.Errorf("edit: 400: %w", jira.ErrPermanent)
	f := newFixture(t)
	f.refuse["CP-2"] = refused
	f.created(hashA, "CP-1", true) // left by an earlier run
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.ed.Start()
	jobB := f.created(hashB, "CP-2", true)
	f.ed.Submit(ctx, jobB) // queued, not made in the caller
	if n := f.jira.Count("AddLabels"); n != 0 {
		t.Fatalf("Submit after Start made %d edits itself", n)
	}
	done := make(chan struct{})
	go func() { f.ed.Run(ctx, 2); close(done) }()

	deadline := time.Now().Add(5 * time.Second)
	for {
		f.mu.Lock()
		a := len(f.edited["CP-1"])
		f.mu.Unlock()
		if a > 0 && testutil.ToFloat64(f.failures.WithLabelValues("permanent")) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 5 s: CP-1 labels %v, permanent failures %v", f.edited["CP-1"],
				testutil.ToFloat64(f.failures.WithLabelValues("permanent")))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := f.jira.Count("AddLabels"); n != 2 {
		t.Errorf("%d edits, want 2 (one each)", n)
	}
	if got := testutil.ToFloat64(f.pending); got != 1 {
		t.Errorf("pending gauge %v, want 1 (the refused edit)", got)
	}
	if m := f.markers(t); !slices.Equal(m, []string{hashB}) {
		t.Errorf("markers %v, want only the refused %s", m, hashB)
	}
	if f.recs.Record(hashA).LabelsPending {
		t.Error("CP-1's record still says labels pending")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}
