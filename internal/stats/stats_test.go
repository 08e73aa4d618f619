package stats

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sethvargo/go-retry"

	"github.com/cowjacket/formjira/internal/localnats"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/testsupport"
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

// Two replicas count into one day: the sums add up, a retried flush of an
// acknowledged increment counts once, and only one replica logs the day's
// summary.
func TestRecordersOfTwoReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a nats-server")
	}
	ns := localnats.StartTB(t)
	nc := ns.ConnectTB(t)
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	if _, err := stream.EnsureStats(ctx, js, stream.Config{}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	yesterday := today.AddDate(0, 0, -1)
	noon := yesterday.Add(12 * time.Hour)

	log := slog.New(slog.DiscardHandler)
	r1, r2 := NewRecorder(js, log), NewRecorder(js, log)
	r1.now = func() time.Time { return noon }
	r2.now = r1.now
	r1.Add(Created, 2)
	r1.Add(Skipped, 1)
	r1.Add(Failed, 1)
	r2.Add(Created, 1)
	r2.Add(DeadLettered, 2)
	r2.Add(Skipped, 1)
	r2.Add(Failed, 1)
	r1.Add(Created, 1)
	for _, r := range []*Recorder{r1, r2} {
		if err := r.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// A retried flush of an already acknowledged increment counts once.
	r1.pending = []statIncr{{subject: stream.StatSubject(yesterday.Format(dayFormat), Created), id: r1.id + ":1", n: 2}}
	if err := r1.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	r2.now = func() time.Time { return today.Add(time.Minute) }
	r2.Add(Created, 1)
	if err := r2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	days, err := Read(ctx, js, yesterday, 2)
	if err != nil {
		t.Fatal(err)
	}
	if d := days[0]; d.Created != 4 || d.Failed != 2 || d.Skipped != 2 || d.DeadLettered != 2 {
		t.Errorf("yesterday %+v, want 4 created, 2 failed, 2 skipped, 2 dead-lettered", d)
	}
	if d := days[1]; d.Created != 1 || d.Failed != 0 {
		t.Errorf("today %+v, want 1 created", d)
	}

	// The daily summary: logged by one replica only.
	var logs testsupport.Buffer
	r1.log = slog.New(slog.NewJSONHandler(&logs, nil))
	r2.log = r1.log
	for _, r := range []*Recorder{r1, r2} {
		if err := r.logSummary(ctx, yesterday.Format(dayFormat), &summaryClaim{}); err != nil {
			t.Fatal(err)
		}
	}
	want := days[0].Line()
	if n := strings.Count(logs.String(), `"msg":"daily summary `); n != 1 || !strings.Contains(logs.String(), want) {
		t.Errorf("%d daily summary lines (want 1 with %q):\n%s", n, want, logs.String())
	}

	// A retry after a won claim whose read failed logs (the claim is now a
	// duplicate); so does r2 after its own claim was stored unanswered
	// (its retry is a duplicate of it), and r1 then does not. A claim
	// answered as another's duplicate does not log, nor one that counts 2
	// (the first claim's id gone from the duplicate window).
	claim := func(day, id, claimant string) {
		m := nats.NewMsg(stream.StatSubject(day, statSummaries))
		m.Header.Set("Nats-Incr", "+1")
		m.Header.Set(nats.MsgIdHdr, id)
		m.Header.Set(claimantHeader, claimant)
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	late := yesterday.Add(-24 * time.Hour).Format(dayFormat)
	claim(late, "summary:"+late+":before-the-window", "someone")
	unanswered := yesterday.Add(-48 * time.Hour).Format(dayFormat)
	claim(unanswered, "summary:"+unanswered, r2.id)
	for _, tc := range []struct {
		r     *Recorder
		day   string
		claim summaryClaim
		logs  int
	}{
		{r2, yesterday.Format(dayFormat), summaryClaim{won: true}, 1},
		{r2, yesterday.Format(dayFormat), summaryClaim{}, 0},
		{r2, late, summaryClaim{}, 0},
		{r2, unanswered, summaryClaim{}, 1},
		{r1, unanswered, summaryClaim{}, 0},
	} {
		logs.Reset()
		c := tc.claim
		if err := tc.r.logSummary(ctx, tc.day, &c); err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(logs.String(), `"msg":"daily summary `); n != tc.logs || c.won != (tc.logs == 1) {
			t.Errorf("%s from %+v: %d lines, claim now %+v; want %d", tc.day, tc.claim, n, c, tc.logs)
		}
	}
}

// TestSummaryThroughAnOutage: NATS away at midnight for longer than a
// publish waits, then back. Both replicas' claims were buffered by nats.go
// and sent on reconnect with nobody waiting for the answers; their retries
// are answered as duplicates. Exactly one replica logs the day: the one
// whose claim was stored first, read back by its name.
func TestSummaryThroughAnOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a nats-server")
	}
	ns := localnats.StartTB(t)
	ctx := context.Background()
	var logs testsupport.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	var rs []*Recorder
	for range 2 {
		nc := ns.ConnectTB(t, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
		js, _ := jetstream.New(nc, jetstream.WithDefaultTimeout(300*time.Millisecond))
		if _, err := stream.EnsureStats(ctx, js, stream.Config{}); err != nil {
			t.Fatal(err)
		}
		r := NewRecorder(js, log)
		r.summaryBackoff = func() retry.Backoff {
			return retry.WithMaxDuration(20*time.Second, retry.NewConstant(100*time.Millisecond))
		}
		rs = append(rs, r)
	}
	day := time.Now().UTC().AddDate(0, 0, -1).Format(dayFormat)
	ns.Shutdown()
	done := make(chan struct{}, len(rs))
	for _, r := range rs {
		go func() { r.summary(ctx, day); done <- struct{}{} }()
	}
	time.Sleep(time.Second) // several attempts time out, their claims buffered
	if err := ns.Restart(); err != nil {
		t.Fatal(err)
	}
	for range rs {
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("a summary still retrying 30 s after NATS came back")
		}
	}
	if n := strings.Count(logs.String(), `"msg":"daily summary `+day); n != 1 {
		t.Errorf("%d daily summary lines after the outage, want 1:\n%s", n, logs.String())
	}
	if n := strings.Count(logs.String(), "not logged yet; retrying"); n < 1 || n > 2*3 {
		t.Errorf("%d retry warnings, want the first of each replica's failures and one every tenth:\n%s", n, logs.String())
	}
}

// TestSummaryAtStart: a replica started after midnight (a deploy at
// 00:00 missed it) logs yesterday's summary; another started later does
// not log it again.
func TestSummaryAtStart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a nats-server")
	}
	ns := localnats.StartTB(t)
	js, _ := jetstream.New(ns.ConnectTB(t))
	ctx := context.Background()
	if _, err := stream.EnsureStats(ctx, js, stream.Config{}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	tenAM := time.Date(now.Year(), now.Month(), now.Day(), 10, 0, 0, 0, time.UTC)
	day := tenAM.AddDate(0, 0, -1).Format(dayFormat)
	var logs testsupport.Buffer
	for i, want := range []string{`"msg":"daily summary ` + day, `"msg":"daily summary claimed by another replica"`} {
		r := NewRecorder(js, slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
		r.now = func() time.Time { return tenAM }
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { r.DailySummaries(rctx); close(done) }()
		testsupport.WaitFor(t, fmt.Sprintf("replica %d's summary at start", i+1), 10*time.Second, func() bool { return strings.Contains(logs.String(), want) })
		cancel()
		<-done
	}
	if n := strings.Count(logs.String(), `"msg":"daily summary `+day); n != 1 {
		t.Errorf("%d summary lines for %s from two replicas started after midnight, want 1:\n%s", n, day, logs.String())
	}
}

// TestSummaryJustAfterMidnight: a replica started within the grace after
// midnight (before its line is due) still logs yesterday's, when due.
func TestSummaryJustAfterMidnight(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a nats-server")
	}
	ns := localnats.StartTB(t)
	js, _ := jetstream.New(ns.ConnectTB(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := stream.EnsureStats(ctx, js, stream.Config{}); err != nil {
		t.Fatal(err)
	}
	var logs testsupport.Buffer
	r := NewRecorder(js, slog.New(slog.NewJSONHandler(&logs, nil)))
	now := time.Now().UTC()
	midnight := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	r.now = func() time.Time { return midnight.Add(5 * time.Second) } // the line is due at midnight + summaryGrace, in the past
	done := make(chan struct{})
	go func() { r.DailySummaries(ctx); close(done) }()
	day := midnight.AddDate(0, 0, -1).Format(dayFormat)
	testsupport.WaitFor(t, "yesterday's line from a replica started at 00:00:05", 10*time.Second, func() bool {
		return strings.Contains(logs.String(), `"msg":"daily summary `+day)
	})
	cancel()
	<-done
}
