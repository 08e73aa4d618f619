package main

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cowjacket/formjira/internal/jirasandbox"
	"github.com/cowjacket/formjira/internal/stats"
	"github.com/cowjacket/formjira/internal/stream"
)

// stats over a known set of records and counters from two "replicas".
func TestStatsOverKnownRecords(t *testing.T) {
	h := newHarness(t, jirasandbox.Options{})
	ctx := context.Background()
	if _, err := stream.EnsureStats(ctx, h.JS, stream.Config{}); err != nil {
		t.Fatal(err)
	}
	kv, err := h.JS.KeyValue(ctx, stream.TicketsBucket)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	yesterday := today.AddDate(0, 0, -1)
	put := func(hash string, r stream.Record) {
		b, _ := json.Marshal(r)
		if _, err := kv.Put(ctx, hash, b); err != nil {
			t.Fatal(err)
		}
	}
	created := func(at time.Time, latency time.Duration) stream.Record {
		return stream.Record{State: stream.StateCreated, Key: "CP-1", CreatedAt: at, CommitTime: at.Add(-latency)}
	}
	noon := yesterday.Add(12 * time.Hour)
	put("a", created(noon, 100*time.Millisecond))
	put("b", created(noon.Add(time.Minute), 200*time.Millisecond))
	put("c", created(noon.Add(2*time.Minute), 1200*time.Millisecond))
	put("d", created(today.Add(time.Second), 50*time.Millisecond))
	put("e", created(today.AddDate(0, 0, -10), time.Second))                                               // outside the window
	put("f", stream.Record{State: stream.StateClaimed, ClaimedAt: noon})                                   // no ticket yet
	put("g", stream.Record{State: stream.StateCreated, Key: "CP-9", CreatedAt: noon.Add(3 * time.Minute)}) // backfill: no commit time

	// Counters as the replicas add them (internal/stats tests the recorder).
	incr := func(day time.Time, name string, n int) {
		m := nats.NewMsg(stream.StatSubject(day.Format(time.DateOnly), name))
		m.Header.Set("Nats-Incr", "+"+strconv.Itoa(n))
		if _, err := h.JS.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	incr(yesterday, stats.Created, 3)
	incr(yesterday, stats.Created, 1)
	incr(yesterday, stats.Failed, 2)
	incr(yesterday, stats.Skipped, 2)
	incr(yesterday, stats.DeadLettered, 2)
	incr(today, stats.Created, 1)

	out := h.mustCmd("stats", "--days", "3")
	want := []string{
		yesterday.AddDate(0, 0, -1).Format(time.DateOnly) + ": 0 created, 0 failed, 0 skipped as duplicates, 0 dead-lettered; commit→ticket latency: no samples",
		yesterday.Format(time.DateOnly) + ": 4 created, 2 failed, 2 skipped as duplicates, 2 dead-lettered; commit→ticket p50 200ms, p99 1.2s (3 samples)",
		today.Format(time.DateOnly) + ": 1 created, 0 failed, 0 skipped as duplicates, 0 dead-lettered; commit→ticket p50 50ms, p99 50ms (1 samples)",
		"total over 3 day(s): 5 created, 2 failed, 2 skipped as duplicates, 2 dead-lettered",
	}
	if got := strings.Split(strings.TrimSpace(out), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("stats:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
	}
	var days []stats.DayStats
	if err := json.Unmarshal([]byte(h.mustCmd("stats", "--days", "2", "--json")), &days); err != nil || len(days) != 2 ||
		days[0].Created != 4 || days[0].P99 != 1200*time.Millisecond || days[1].LatencySamples != 1 {
		t.Errorf("stats --json: %v %+v", err, days)
	}
}
