package jira

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestPacerLowPriorityYields: at 20 requests/s, while normal callers keep
// arriving, a low-priority caller gets no token; it gets one as soon as
// they are done, and it never delays them.
func TestPacerLowPriorityYields(t *testing.T) {
	p := NewPacer(20) // burst 4
	ctx := context.Background()
	const normals = 10
	var mu sync.Mutex
	var normalDone []time.Time
	var lowAt time.Time
	var wg sync.WaitGroup
	start := time.Now()
	for range normals {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Wait(ctx, op); err != nil {
				t.Error(err)
			}
			mu.Lock()
			normalDone = append(normalDone, time.Now())
			mu.Unlock()
		}()
	}
	time.Sleep(5 * time.Millisecond) // the normal callers are queued
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := p.WaitLow(ctx, op); err != nil {
			t.Error(err)
		}
		mu.Lock()
		lowAt = time.Now()
		mu.Unlock()
	}()
	wg.Wait()
	last := normalDone[0]
	for _, d := range normalDone {
		if d.After(last) {
			last = d
		}
	}
	if lowAt.Before(last) {
		t.Errorf("low-priority request went at %v, before the last normal one at %v", lowAt.Sub(start), last.Sub(start))
	}
	// 10 requests at 20/s with a burst of 4: the last is due at ≈ 300 ms;
	// a stolen token would push it to ≈ 350 ms.
	if d := last.Sub(start); d > 340*time.Millisecond {
		t.Errorf("normal requests took %v, want ≈ 300ms (a low-priority request took a token)", d)
	}
	// The low one follows within about one token interval.
	if d := lowAt.Sub(last); d > 150*time.Millisecond {
		t.Errorf("low-priority request %v after the last normal one, want ≤ one token interval", d)
	}
}

func TestPacerLowPriorityHonoursRetryAfter(t *testing.T) {
	p := NewPacer(0)
	p.Throttled(op, 200*time.Millisecond, "jira-quota-tenant-based", 0)
	start := time.Now()
	if err := p.WaitLow(context.Background(), op); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 190*time.Millisecond {
		t.Errorf("waited %v, want ≥ 200ms", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	p.Throttled(op, time.Second, "jira-quota-tenant-based", 0)
	if err := p.WaitLow(ctx, op); err == nil {
		t.Error("WaitLow returned before Retry-After elapsed")
	}
}

const op = OpBulkCreate

// A burst 429 slows its own lane only, and not to a stop: Jira limits
// bursts per endpoint, and the throttled request itself is retried after
// Retry-After by its caller. Another replica's decrease is adopted.
func TestPacerBurstThrottleSlowsTheLaneOnly(t *testing.T) {
	p := NewPacer(0)
	ctx := context.Background()
	for range 20 {
		if err := p.Wait(ctx, op); err != nil {
			t.Fatal(err)
		}
	}
	p.Throttled(op, time.Second, "jira-burst-based", 0)
	if r := p.Rate(op); r > 20 || r < 0.5 {
		t.Errorf("rate after a burst 429 = %v, want 95%% of what was achieved (≤ 20)", r)
	}
	// The lane itself waits out Retry-After.
	ctx1, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	if err := p.Wait(ctx1, op); err == nil {
		t.Error("the throttled lane sent before Retry-After elapsed")
	}
	cancel()
	if r := p.Rate(OpBulkFetch); r < 1000 {
		t.Errorf("another lane slowed to %v", r)
	}
	start := time.Now()
	if err := p.Wait(ctx, OpBulkFetch); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("another lane waited %v after a burst 429", d)
	}
	got := make(chan float64, 1)
	p.OnDecrease(func(o string, site, _ float64) { got <- site })
	p.Adopt(OpSearch, 3, 0)
	if r := p.Rate(OpSearch); r != 3 {
		t.Errorf("adopted rate %v, want 3", r)
	}
	time.Sleep(1100 * time.Millisecond) // one decrease per second per lane
	p.Throttled(OpSearch, time.Second, "", 0)
	if site := <-got; site < 2.84 || site > 2.86 {
		t.Errorf("decrease told %v, want 2.85 (95%% of 3)", site)
	}
}

// With JIRA_RATE the site's budget is shared: each replica paces at its
// share, and a lane never climbs above the budget.
func TestPacerShareOfTheSiteBudget(t *testing.T) {
	p := NewPacer(30)
	p.SetShare(1.0 / 3)
	ctx := context.Background()
	start := time.Now()
	for range 12 { // a burst of 2 (a fifth of a second), then 10/s
		if err := p.Wait(ctx, op); err != nil {
			t.Fatal(err)
		}
		p.Succeeded(op)
	}
	if d := time.Since(start); d < 900*time.Millisecond || d > 1400*time.Millisecond {
		t.Errorf("12 requests took %v at a third of 30/s, want ≈ 1s", d)
	}
	if r := p.Rate(op); r != 30 {
		t.Errorf("site rate %v, want the budget 30 (never above it)", r)
	}
}

// A 429 that says the endpoint's rate (X-RateLimit-Limit) sets an unpaced
// lane to it, and never raises a lane that was slower.
func TestPacerThrottledWithTheRate(t *testing.T) {
	p := NewPacer(0)
	p.Throttled(op, 0, "jira-burst-based", 10)
	if r := p.Rate(op); r != 10 {
		t.Errorf("unpaced lane after a 429 saying 10/s: %v, want 10", r)
	}
	p.Told(OpSearch, 5) // a normal answer said 5/s
	p.Throttled(OpSearch, 0, "jira-burst-based", 10)
	if r := p.Rate(OpSearch); r > 5 {
		t.Errorf("a lane at 5/s after a 429 saying 10/s: %v, want at most 5", r)
	}
}

// A lane nobody has heard Jira answer sends one request and waits for its
// answer (which may say the rate) before the next: a fleet starting
// together must not burst past the limit first.
func TestPacerFreshLaneWaitsForTheFirstAnswer(t *testing.T) {
	p := NewPacer(0)
	ctx := context.Background()
	if err := p.Wait(ctx, op); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	second := make(chan time.Duration, 1)
	go func() {
		_ = p.Wait(ctx, op)
		second <- time.Since(start)
	}()
	time.Sleep(200 * time.Millisecond)
	select {
	case d := <-second:
		t.Fatalf("the second request went after %v, before the first was answered", d)
	default:
	}
	p.Told(op, 50)
	p.Answered(op)
	if d := <-second; d < 200*time.Millisecond || d > 900*time.Millisecond {
		t.Errorf("the second request went %v after the first, want right after its answer (200 ms)", d)
	}
	if r := p.Rate(op); r != 50 {
		t.Errorf("the lane's rate after an answer saying 50/s: %v", r)
	}
}
