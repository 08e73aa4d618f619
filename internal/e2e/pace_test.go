package e2e

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/jirasandbox"
	"github.com/cowjacket/formjira/internal/localnats"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/testsupport"
)

// paceRun is one run of issue 14's budget test: replicas ticketers drain a
// backlog of n events in platform mode (bulk creates of 50) from a Jira
// allowing perSecond calls a second per endpoint, as Jira Cloud's burst
// limits do.
type paceRun struct {
	replicas, n int
	perSecond   float64
	jiraRate    string // JIRA_RATE ("" unset)
	// headers: the 429s' headers (default: Retry-After and the usage
	// headers on every answer); RateLimitNoHeaders leaves only the 429s
	// to go by.
	headers jirasandbox.RateLimitHeaders
}

type paceResult struct {
	ticketsPerSecond, ceiling float64
	calls, throttled          int
	elapsed                   time.Duration
	firstCreate               time.Duration // ticketer start to the first bulk create
}

func (r paceRun) run(tb testing.TB) paceResult {
	tb.Helper()
	res, _ := r.runSB(tb)
	return res
}

func (r paceRun) runSB(tb testing.TB) (paceResult, *jirasandbox.Server) {
	tb.Helper()
	ns := localnats.StartTB(tb)
	sb, jiraURL := sandbox(tb, jirasandbox.Options{Latency: 20 * time.Millisecond, RatePerSecond: r.perSecond, Burst: int(r.perSecond), RateLimitHeaders: r.headers})
	js := natsJS(tb, ns.URL())
	preload(tb, js, r.n)
	knownRequesters(tb, sb, js)
	env := ticketerEnv(ns.URL(), jiraURL, mappingFile(tb, "mapping.yaml"))
	env["BATCH_SIZE"], env["BATCH_WAIT"], env["MAX_ACK_PENDING"] = "50", "50ms", "2000"
	env["JIRA_TIMEOUT"], env["RETRY_WINDOW"], env["ACK_WAIT"] = "10s", "30s", "30s"
	if r.jiraRate != "" {
		env["JIRA_RATE"] = r.jiraRate
	}
	// The real binary, as production runs it: built without the race
	// detector, whose cost would make the ticketer, not Jira, the limit.
	bin := buildBinary(tb, "ticketer")
	begin := time.Now()
	for i := range r.replicas {
		startBinary(tb, fmt.Sprintf("ticketer-%d", i+1), bin, env)
	}
	testsupport.WaitFor(tb, fmt.Sprintf("%d tickets", r.n), 3*time.Minute, func() bool { return len(sb.Issues()) >= r.n })
	issues := sb.Issues()
	last := issues[0].Created
	for _, is := range issues {
		last = maxTime(last, is.Created)
	}
	res := paceResult{elapsed: last.Sub(begin), ceiling: r.perSecond * 50}
	res.ticketsPerSecond = float64(r.n) / res.elapsed.Seconds()
	for _, q := range sb.Requests() {
		if q.Endpoint == "POST /rest/api/3/issue/bulk" && res.firstCreate == 0 {
			res.firstCreate = q.Time.Sub(begin)
		}
		res.calls++
		if q.Status == 429 {
			res.throttled++
		}
	}
	if len(issues) != r.n {
		tb.Errorf("%d tickets for %d events", len(issues), r.n)
	}
	return res, sb
}

// knownRequesters makes every sample's requester a customer already cached
// in FORMS_CUSTOMERS: the steady state, where the budget goes to creates.
func knownRequesters(tb testing.TB, sb *jirasandbox.Server, js jetstream.JetStream) {
	tb.Helper()
	ctx := context.Background()
	cache, err := stream.EnsureCustomers(ctx, js, stream.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	for _, s := range samples(tb) {
		email := strings.ToLower(strings.TrimSpace(*s["emailaddress"]))
		id := sb.AddCustomer(email, *s["newusername"])
		if err := sb.AddToServiceDesk(id); err != nil {
			tb.Fatal(err)
		}
		if err := cache.Put(ctx, stream.Customer{Email: email, AccountID: id, At: time.Now()}); err != nil {
			tb.Fatal(err)
		}
	}
}

// TestJiraBudgetFoundAndShared (issue 14): with JIRA_RATE unset, one and
// three replicas find Jira's pace themselves — throughput at least 0.95 of
// the bulk ceiling (perSecond × 50 tickets a second), ticketer start to last
// ticket, with 429s under 5 % of the calls; with JIRA_RATE set to the limit
// the three share it. Jira allows 5 calls a second here (250 tickets a
// second), with the real binary; BenchmarkJiraBudget measures 10 a second,
// for BENCHMARKS.md. Three replicas take up to a second to start on this
// shared machine (one: a third of that), which counts: their backlog is
// 20 s of Jira's budget, so that start costs under 0.05.
func TestJiraBudgetFoundAndShared(t *testing.T) {
	integration(t)
	for _, r := range []paceRun{
		{replicas: 1, n: 2500, perSecond: 5},
		{replicas: 3, n: 5000, perSecond: 5},
		{replicas: 3, n: 5000, perSecond: 5, jiraRate: "5"},
	} {
		t.Run(fmt.Sprintf("%d replicas JIRA_RATE=%s", r.replicas, cmp.Or(r.jiraRate, "unset")), func(t *testing.T) {
			res := r.run(t)
			ratio := res.ticketsPerSecond / res.ceiling
			share := float64(res.throttled) / float64(res.calls)
			t.Logf("%.0f tickets/s of %.0f (%.3f), %d calls, %d answered 429 (%.1f%%), first bulk create %v and last ticket %v after start",
				res.ticketsPerSecond, res.ceiling, ratio, res.calls, res.throttled, 100*share, res.firstCreate.Round(time.Millisecond), res.elapsed.Round(time.Millisecond))
			if ratio < 0.95 {
				t.Errorf("throughput %.3f of the bulk ceiling, want ≥ 0.95", ratio)
			}
			if share >= 0.05 {
				t.Errorf("%.1f%% of the calls answered 429, want under 5%%", 100*share)
			}
		})
	}
}

// BenchmarkJiraBudget is TestJiraBudgetFoundAndShared's runs, plus Jira
// sending no rate-limit headers at all (the pacer then has only the 429s):
//
//	go test -run '^$' -bench JiraBudget -benchtime 1x -count 3 ./internal/e2e/
func BenchmarkJiraBudget(b *testing.B) {
	for _, r := range []paceRun{
		{replicas: 1, n: 5000, perSecond: 10},
		{replicas: 3, n: 5000, perSecond: 10},
		{replicas: 3, n: 5000, perSecond: 10, jiraRate: "10"},
		{replicas: 1, n: 5000, perSecond: 10, headers: jirasandbox.RateLimitNoHeaders},
		{replicas: 3, n: 5000, perSecond: 10, headers: jirasandbox.RateLimitNoHeaders},
	} {
		name := fmt.Sprintf("replicas=%d/JIRA_RATE=%s/headers=%s", r.replicas, cmp.Or(r.jiraRate, "unset"), cmp.Or(string(r.headers), "all"))
		b.Run(name, func(b *testing.B) {
			integration(b)
			var ratio, throttled float64
			for range b.N {
				res := r.run(b)
				ratio += res.ticketsPerSecond / res.ceiling
				throttled += float64(res.throttled) / float64(res.calls)
			}
			b.ReportMetric(ratio/float64(b.N), "of_ceiling")
			b.ReportMetric(100*throttled/float64(b.N), "%429")
		})
	}
}
