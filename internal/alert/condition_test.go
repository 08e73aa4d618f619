package alert

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// notifierFunc adapts a function to Notifier.
type notifierFunc func(Alert)

func (f notifierFunc) Notify(a Alert) { f(a) }

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestConditionFiresOnceAfterDurationAndResets(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	var got []Alert
	c := NewCondition(JiraUnreachable, 5*time.Minute, notifierFunc(func(a Alert) { got = append(got, a) }), WithClock(clock.Now))

	steps := []struct {
		advance   time.Duration
		active    bool
		wantTotal int // alerts emitted so far
		firing    bool
	}{
		{0, true, 0, false},               // becomes active
		{4 * time.Minute, true, 0, false}, // not yet
		{time.Minute, true, 0, false},     // exactly 5m: "more than" not met
		{time.Second, true, 1, true},      // 5m1s: fires
		{time.Minute, true, 1, true},      // still active: no repeat
		{time.Minute, false, 2, false},    // clears: resolved
		{time.Second, false, 2, false},    // stays clear: nothing
		{time.Second, true, 2, false},     // active again: timer restarts
		{3 * time.Minute, false, 2, false},
		{time.Second, true, 2, false},     // the earlier stretch does not count
		{5 * time.Minute, true, 2, false}, // exactly 5m again
		{time.Millisecond, true, 3, true}, // fires again after the reset
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		c.Observe(s.active, "GET /rest/api/3/myself: connection refused")
		if len(got) != s.wantTotal || c.Firing() != s.firing {
			t.Fatalf("step %d: %d alerts firing=%v, want %d firing=%v", i, len(got), c.Firing(), s.wantTotal, s.firing)
		}
	}
	if got[0].Kind != JiraUnreachable || got[0].Resolved || !strings.Contains(got[0].Detail, "connection refused") ||
		!strings.Contains(got[0].Detail, "for 5m1s") {
		t.Errorf("fired alert = %+v", got[0])
	}
	if !got[1].Resolved || got[1].Kind != JiraUnreachable || !strings.Contains(got[1].Detail, "cleared after 7m") {
		t.Errorf("resolved alert = %+v", got[1])
	}
	if !got[0].At.Equal(time.Date(2026, 1, 2, 3, 9, 6, 0, time.UTC)) {
		t.Errorf("At = %s, want the clock's time", got[0].At)
	}
}

func TestConditionWithoutResolved(t *testing.T) {
	clock := &fakeClock{t: time.Unix(0, 0)}
	var got []Alert
	c := NewCondition(CaptureStalled, time.Minute, notifierFunc(func(a Alert) { got = append(got, a) }),
		WithClock(clock.Now), WithoutResolved(), WithSummary("Capture stalled: slot lag above 1GiB"))
	c.Observe(true, "lag 2GiB")
	clock.Advance(2 * time.Minute)
	c.Observe(true, "lag 3GiB")
	c.Observe(false, "")
	if len(got) != 1 || got[0].Summary != "Capture stalled: slot lag above 1GiB" || !strings.HasPrefix(got[0].Detail, "lag 3GiB") {
		t.Fatalf("alerts = %+v, want one firing with the latest detail", got)
	}
}

func TestConditionWithNilAlerter(t *testing.T) {
	var a *Alerter // alerting disabled
	c := NewCondition(BacklogGrowing, 0, a)
	c.Observe(true, "x")
	c.Observe(true, "x")
	c.Observe(false, "")
}

func TestConditionDrivesAlerter(t *testing.T) {
	sink := &recordingSink{}
	a := New(fastConfig(), nil, sink)
	runAlerter(t, a)
	clock := &fakeClock{t: time.Now()}
	c := NewCondition(BacklogGrowing, time.Minute, a, WithClock(clock.Now))
	c.Observe(true, "pending 120")
	clock.Advance(61 * time.Second)
	c.Observe(true, "pending 480")
	c.Observe(false, "pending 0")
	msgs := sink.wait(t, 2, time.Second)
	if msgs[0].Subject != "[cowjacket] Consumer backlog growing" || msgs[1].Subject != "[cowjacket] RESOLVED: Consumer backlog growing" {
		t.Errorf("subjects %q, %q", msgs[0].Subject, msgs[1].Subject)
	}
}
