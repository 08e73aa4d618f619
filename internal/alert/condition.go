package alert

import (
	"fmt"
	"sync"
	"time"
)

// Notifier receives alerts; *Alerter is one.
type Notifier interface {
	Notify(Alert)
}

// Condition turns a periodically observed state ("Jira unreachable",
// "slot lag above threshold") into one alert when it has held for longer
// than a duration, and one "resolved" alert when it clears.
type Condition struct {
	kind     Kind
	after    time.Duration
	n        Notifier
	now      func() time.Time
	resolved bool
	summary  string

	mu     sync.Mutex
	since  time.Time // start of the current active stretch; zero when inactive
	fired  bool
	detail string
}

// ConditionOption configures a Condition.
type ConditionOption func(*Condition)

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) ConditionOption {
	return func(c *Condition) { c.now = now }
}

// WithoutResolved suppresses the "resolved" alert when the condition clears.
func WithoutResolved() ConditionOption {
	return func(c *Condition) { c.resolved = false }
}

// WithSummary sets the alerts' Summary (default: the kind's title).
func WithSummary(s string) ConditionOption {
	return func(c *Condition) { c.summary = s }
}

// NewCondition alerts n with kind once the observed state has been active
// continuously for longer than after. n may be a nil *Alerter (no-op).
func NewCondition(kind Kind, after time.Duration, n Notifier, opts ...ConditionOption) *Condition {
	c := &Condition{kind: kind, after: after, n: n, now: time.Now, resolved: true}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Observe records the current state. Call it periodically (the alert can
// only fire on an Observe call); detail describes the state for the alert.
func (c *Condition) Observe(active bool, detail string) {
	c.mu.Lock()
	now := c.now()
	var out *Alert
	switch {
	case active:
		if c.since.IsZero() {
			c.since = now
		}
		c.detail = detail
		if !c.fired && now.Sub(c.since) > c.after {
			c.fired = true
			out = &Alert{Kind: c.kind, Summary: c.summary, At: now,
				Detail: fmt.Sprintf("%s (for %s, threshold %s)", detail, fmtDuration(now.Sub(c.since).Round(time.Second)), fmtDuration(c.after)),
				Fields: map[string]string{"since": c.since.UTC().Format(time.RFC3339)}}
		}
	case !c.since.IsZero():
		if c.fired && c.resolved {
			out = &Alert{Kind: c.kind, Summary: c.summary, At: now, Resolved: true,
				Detail: fmt.Sprintf("cleared after %s; last state: %s", fmtDuration(now.Sub(c.since).Round(time.Second)), c.detail),
				Fields: map[string]string{"since": c.since.UTC().Format(time.RFC3339)}}
		}
		c.since, c.fired, c.detail = time.Time{}, false, ""
	}
	c.mu.Unlock()
	// Notify outside the lock: it never blocks, but a custom Notifier might.
	if out != nil && c.n != nil {
		c.n.Notify(*out)
	}
}

// Firing reports whether the condition has alerted and not yet cleared.
func (c *Condition) Firing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fired
}
