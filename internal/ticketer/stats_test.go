package ticketer

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cowjacket/formjira/internal/jirasandbox"
	"github.com/cowjacket/formjira/internal/stream"
)

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		var out []time.Duration
		for _, n := range ns {
			out = append(out, time.Duration(n)*time.Millisecond)
		}
		return out
	}
	for _, tc := range []struct {
		ds       []time.Duration
		p50, p99 time.Duration
	}{
		{nil, 0, 0},
		{ms(7), 7 * time.Millisecond, 7 * time.Millisecond},
		{ms(100, 200, 1000), 200 * time.Millisecond, time.Second},
		{ms(1, 2, 3, 4), 2 * time.Millisecond, 4 * time.Millisecond},
	} {
		if p50, p99 := percentile(tc.ds, 0.5), percentile(tc.ds, 0.99); p50 != tc.p50 || p99 != tc.p99 {
			t.Errorf("%v: p50 %v p99 %v, want %v %v", tc.ds, p50, p99, tc.p50, tc.p99)
		}
	}
}

// stats over a known set of records and counters from two "replicas".
func TestStatsOverKnownRecords(t *testing.T) {
	h := newHarness(t, jirasandbox.Options{})
	ctx := context.Background()
	if _, err := ensureStats(ctx, h.js, stream.Config{}); err != nil {
		t.Fatal(err)
	}
	kv, err := h.js.KeyValue(ctx, stream.TicketsBucket)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	yesterday := today.AddDate(0, 0, -1)
	put := func(hash string, r Record) {
		b, _ := json.Marshal(r)
		if _, err := kv.Put(ctx, hash, b); err != nil {
			t.Fatal(err)
		}
	}
	created := func(at time.Time, latency time.Duration) Record {
		return Record{State: StateCreated, Key: "CP-1", CreatedAt: at, CommitTime: at.Add(-latency)}
	}
	noon := yesterday.Add(12 * time.Hour)
	put("a", created(noon, 100*time.Millisecond))
	put("b", created(noon.Add(time.Minute), 200*time.Millisecond))
	put("c", created(noon.Add(2*time.Minute), 1200*time.Millisecond))
	put("d", created(today.Add(time.Second), 50*time.Millisecond))
	put("e", created(today.AddDate(0, 0, -10), time.Second))                                 // outside the window
	put("f", Record{State: StateClaimed, ClaimedAt: noon})                                   // no ticket yet
	put("g", Record{State: StateCreated, Key: "CP-9", CreatedAt: noon.Add(3 * time.Minute)}) // backfill: no commit time

	// Two replicas count into yesterday; the sums must add up.
	log := slog.New(slog.DiscardHandler)
	r1, r2 := newStatsRecorder(h.js, log), newStatsRecorder(h.js, log)
	r1.now = func() time.Time { return noon }
	r2.now = r1.now
	r1.count([]Outcome{{Status: StatusCreated}, {Status: StatusCreated}, {Status: StatusSkipped}, {Status: StatusRetry}})
	r2.count([]Outcome{{Status: StatusCreated}, {Status: StatusDeadLettered}, {Status: StatusSkipped}, {Status: StatusAuth}, {Status: StatusDeadLettered}})
	r1.add(statCreated, 1) // e.g. the forced replay
	for _, r := range []*statsRecorder{r1, r2} {
		if err := r.flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// A retried flush of an already acknowledged increment counts once.
	r1.pending = []statIncr{{subject: statSubject(yesterday.Format(dayFormat), statCreated), id: r1.id + ":1", n: 2}}
	if err := r1.flush(ctx); err != nil {
		t.Fatal(err)
	}
	r2.now = func() time.Time { return today.Add(time.Minute) }
	r2.add(statCreated, 1)
	if err := r2.flush(ctx); err != nil {
		t.Fatal(err)
	}

	out := h.mustCmd("stats", "--days", "3")
	want := []string{
		yesterday.AddDate(0, 0, -1).Format(dayFormat) + ": 0 created, 0 failed, 0 skipped as duplicates, 0 dead-lettered; commit→ticket latency: no samples",
		yesterday.Format(dayFormat) + ": 4 created, 2 failed, 2 skipped as duplicates, 2 dead-lettered; commit→ticket p50 200ms, p99 1.2s (3 samples)",
		today.Format(dayFormat) + ": 1 created, 0 failed, 0 skipped as duplicates, 0 dead-lettered; commit→ticket p50 50ms, p99 50ms (1 samples)",
		"total over 3 day(s): 5 created, 2 failed, 2 skipped as duplicates, 2 dead-lettered",
	}
	if got := strings.Split(strings.TrimSpace(out), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("stats:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
	}
	var days []DayStats
	if err := json.Unmarshal([]byte(h.mustCmd("stats", "--days", "2", "--json")), &days); err != nil || len(days) != 2 ||
		days[0].Created != 4 || days[0].P99 != 1200*time.Millisecond || days[1].LatencySamples != 1 {
		t.Errorf("stats --json: %v %+v", err, days)
	}

	// The daily summary: the same line, logged by one replica only.
	var logs syncBuffer
	r1.log = slog.New(slog.NewJSONHandler(&logs, nil))
	r2.log = r1.log
	for _, r := range []*statsRecorder{r1, r2} {
		if err := r.logSummary(ctx, yesterday.Format(dayFormat)); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(logs.String(), `"msg":"daily summary `); n != 1 || !strings.Contains(logs.String(), want[1]) {
		t.Errorf("%d daily summary lines:\n%s", n, logs.String())
	}
}
