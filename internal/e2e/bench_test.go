package e2e

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/capture"
	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/jirasandbox"
	"github.com/cowjacket/formjira/internal/localnats"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/testsupport"
	"github.com/cowjacket/formjira/internal/ticketer"
	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

// Benchmarks of issue 3 §7. Each iteration is a whole measured run (a
// fresh nats-server and sandbox), so run them with -benchtime 1x and
// -count for repetitions:
//
//	go test -run '^$' -bench . -benchtime 1x -count 3 ./internal/e2e/

// BenchmarkTicketerBulk: 2,000 events waiting in FORMS, platform mode (bulk
// create, 50 per call), Jira at 100 ms per call and 10 calls/s. Goal ≥ 400
// tickets/s (ceiling 10 × 50 = 500).
func BenchmarkTicketerBulk(b *testing.B) {
	benchTicketer(b, "mapping.yaml", 2000, map[string]string{
		"CONCURRENCY":     "4",
		"BATCH_SIZE":      "50",
		"BATCH_WAIT":      "50ms",
		"JIRA_RATE":       "10",
		"MAX_ACK_PENDING": "1000",
	})
}

// BenchmarkTicketerJSM: 100 events, JSM request API (one request per
// ticket, then one edit for the labels, deferred to spare capacity), same
// Jira. Goal ≥ 9 tickets/s (tickets existing); every ticket must then get
// its hash label (s_to_all_labelled: from start until the last one has).
func BenchmarkTicketerJSM(b *testing.B) {
	benchTicketer(b, "mapping-jsm.yaml", 100, map[string]string{
		"CONCURRENCY":     "4",
		"BATCH_SIZE":      "10",
		"BATCH_WAIT":      "50ms",
		"JIRA_RATE":       "10",
		"MAX_ACK_PENDING": "1000",
	})
}

func benchTicketer(b *testing.B, mapping string, n int, tune map[string]string) {
	integration(b)
	var rate, steady, calls, throttled, labelled float64
	for range b.N {
		b.StopTimer()
		ns := localnats.StartTB(b)
		sb, jiraURL := sandbox(b, jirasandbox.Options{Latency: 100 * time.Millisecond, RatePerSecond: 10, Burst: 10})
		js := natsJS(b, ns.URL())
		preload(b, js, n)
		knownRequesters(b, sb, js) // the steady state: returning requesters
		env := ticketerEnv(ns.URL(), jiraURL, mappingFile(b, mapping))
		env["JIRA_TIMEOUT"] = "10s"
		env["RETRY_WINDOW"] = "30s"
		env["ACK_WAIT"] = "30s"
		maps.Copy(env, tune)
		b.StartTimer()
		begin := time.Now()
		p := start(b, "ticketer", ticketer.Run, env)
		// A ticket is there for the customer and support once it exists;
		// in JSM mode its labels follow in a deferred edit.
		testsupport.WaitFor(b, fmt.Sprintf("%d tickets", n), 5*time.Minute, func() bool { return len(sb.Issues()) >= n })
		elapsed := time.Since(begin)
		b.StopTimer()
		// Every ticket must still get its hash label.
		waitLabelled(b, sb, n, 2*time.Minute)
		labelled += time.Since(begin).Seconds()
		p.stop(b)

		issues := sb.Issues()
		if len(issues) != n {
			b.Fatalf("%d issues for %d events", len(issues), n)
		}
		first, last := issues[0].Created, issues[0].Created
		for _, is := range issues {
			first, last = minTime(first, is.Created), maxTime(last, is.Created)
		}
		rate += float64(n) / elapsed.Seconds()
		steady += float64(n-1) / last.Sub(first).Seconds()
		for _, r := range sb.Requests() {
			calls++
			if r.Status == 429 {
				throttled++
			}
		}
	}
	iters := float64(b.N)
	b.ReportMetric(rate/iters, "tickets/s")
	b.ReportMetric(steady/iters, "steady_tickets/s")
	b.ReportMetric(calls/iters, "jira_calls")
	b.ReportMetric(throttled/iters, "jira_429s")
	b.ReportMetric(labelled/iters, "s_to_all_labelled")
}

// preload publishes n distinct events into FORMS, as capture would.
func preload(tb testing.TB, js jetstream.JetStream, n int) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := stream.EnsureAll(ctx, js, stream.Config{}); err != nil {
		tb.Fatal(err)
	}
	s := samples(tb)
	subject := stream.Subject("public", "form_submissions")
	var futs []jetstream.PubAckFuture
	for i := range n {
		c := fmt.Sprintf("benchmark event %d", i)
		sm := form.Sample(cloneSample(s[i%len(s)]))
		sm["Comments"] = &c
		ev := form.NewEvent(sm.Columns(), []string{"id"}, nil, &formsv1.Source{}, time.Now())
		m, err := stream.NewMsg(subject, ev)
		if err != nil {
			tb.Fatal(err)
		}
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			tb.Fatal(err)
		}
		futs = append(futs, f)
	}
	for _, f := range futs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			tb.Fatal(err)
		case <-ctx.Done():
			tb.Fatal(ctx.Err())
		}
	}
}

// waitLabelled waits until n issues carry their hash label (JSM adds labels
// with an edit after the create: the ticket is done only then).
func waitLabelled(tb testing.TB, sb *jirasandbox.Server, n int, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		done := 0
		for _, is := range sb.Issues() {
			if slices.ContainsFunc(is.Labels, func(l string) bool { return len(l) == len("cowjacket-")+64 }) {
				done++
			}
		}
		if done >= n {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d of %d tickets labelled after %v", done, n, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkCommitToTicket: the whole pipeline (PostgreSQL → capture →
// FORMS → ticketer → sandbox) at 50 single-row commits per second for 30 s
// against a Jira answering in 50 ms. Latency is the sandbox's creation time
// of the ticket minus the time the row's INSERT was sent (an upper bound of
// commit → ticket). Goal p50 ≤ 250 ms, p99 ≤ 1 s.
func BenchmarkCommitToTicket(b *testing.B) {
	integration(b)
	const (
		perSec   = 50
		duration = 30 * time.Second
	)
	var p50, p90, p99, pmax float64
	for range b.N {
		b.StopTimer()
		dsn := database(b)
		ns := localnats.StartTB(b)
		sb, jiraURL := sandbox(b, jirasandbox.Options{Latency: 50 * time.Millisecond})
		knownRequesters(b, sb, natsJS(b, ns.URL())) // the steady state: returning requesters
		start(b, "capture", capture.Run, captureEnv(dsn, ns.URL()))
		env := ticketerEnv(ns.URL(), jiraURL, mappingFile(b, "mapping.yaml"))
		env["BATCH_WAIT"] = "50ms" // the default
		env["CONCURRENCY"] = "4"   // the default
		start(b, "ticketer", ticketer.Run, env)
		c := connect(b, dsn)
		testsupport.WaitFor(b, "capture streaming", 20*time.Second, func() bool { return walsenderPID(c) != 0 })
		// Warm up: the first ticket pays for the createmeta fetch.
		warm := rowOf(samples(b)[0], ptr("warm-up"))
		if err := insert(context.Background(), c, warm); err != nil {
			b.Fatal(err)
		}
		testsupport.WaitFor(b, "the warm-up ticket", 10*time.Second, func() bool { return len(sb.IssueByLabel(warm.label())) == 1 })

		b.StartTimer()
		rows := distinctRows(b, fmt.Sprintf("latency %d", time.Now().UnixNano()), int(perSec*duration/time.Second))
		sent := make(map[string]time.Time, len(rows))
		tick := time.NewTicker(time.Second / perSec)
		for _, r := range rows {
			<-tick.C
			sent[r.label()] = time.Now()
			if err := insert(context.Background(), c, r); err != nil {
				b.Fatal(err)
			}
		}
		tick.Stop()
		testsupport.WaitFor(b, "every row ticketed", 60*time.Second, func() bool { return len(sb.Issues()) >= len(rows)+1 })
		b.StopTimer()

		var lat []float64
		for _, is := range sb.Issues() {
			for _, l := range is.Labels {
				if t0, ok := sent[l]; ok {
					lat = append(lat, float64(is.Created.Sub(t0))/float64(time.Millisecond))
				}
			}
		}
		if len(lat) != len(rows) {
			b.Fatalf("%d latencies for %d rows", len(lat), len(rows))
		}
		slices.Sort(lat)
		p50 += quantile(lat, 0.50)
		p90 += quantile(lat, 0.90)
		p99 += quantile(lat, 0.99)
		pmax += lat[len(lat)-1]
	}
	iters := float64(b.N)
	b.ReportMetric(p50/iters, "p50_ms")
	b.ReportMetric(p90/iters, "p90_ms")
	b.ReportMetric(p99/iters, "p99_ms")
	b.ReportMetric(pmax/iters, "max_ms")
}

func quantile(sorted []float64, q float64) float64 {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ptr(s string) *string { return &s }

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
