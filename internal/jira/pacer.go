package jira

import (
	"context"
	"math"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Pacer is the one gate every request to Jira passes. Jira Cloud limits
// bursts per tenant and per endpoint ("Burst API rate limits … enforced per
// tenant and per API/resource path", https://developer.atlassian.com/cloud/jira/platform/rate-limiting/),
// so the pacer keeps one lane per operation: a token bucket at that lane's
// share of the site's rate.
//
// The site's rate is configured (JIRA_RATE) or found: a lane starts
// unpaced, and on a 429 it settles at 95 % of the rate it had reached, then
// climbs back additively (+0.5 % a second while callers queue), so it stays
// close under Jira's limit with few 429s. A 429 whose RateLimit-Reason is a
// quota (jira-quota-*) stops every lane until Jira's reset ("Pause all API
// requests until the window resets"); a burst 429 stops and slows its own
// lane only ("Reduce your request rate to the specific endpoint"). With several replicas, each paces
// at Share of the site rate (SetShare), and decreases are passed on through
// OnDecrease / Adopt so that one replica's 429 slows all.
type Pacer struct {
	mu       sync.Mutex
	ceiling  float64 // JIRA_RATE per lane, site-wide; +Inf: none
	share    float64 // this replica's fraction of the site rate
	lanes    map[string]*lane
	until    time.Time     // quota pause: no request before this
	changed  chan struct{} // closed when until moves, to wake sleepers
	decrease func(op string, site, refused float64)
	hold     func(until time.Time)
}

// lane is one endpoint's bucket and estimate.
type lane struct {
	lim       *rate.Limiter
	until     time.Time // Retry-After of this endpoint's last 429
	site      float64   // the site's rate for this endpoint; +Inf = unpaced
	decreased time.Time
	told      float64     // the rate Jira said (X-RateLimit-Limit): climb no higher
	bad       float64     // the site rate Jira last refused: climb fast far below it
	recent    []time.Time // sends, to measure the achieved rate
	waiting   int         // normal-priority callers inside Wait
	queued    bool        // the last Wait had to wait: the lane is the bottleneck
	// A lane nobody has heard Jira answer yet sends one request and waits
	// for its answer (which may say the rate): a fleet of workers starting
	// together would otherwise burst past the limit before any answer.
	fresh, probing bool
	answered       chan struct{} // closed on the first answer
}

// minRate is the floor of the slow-down, per lane and site.
const minRate = 0.5

// NewPacer paces every lane at perSecond site-wide (JIRA_RATE); 0 means
// unpaced until the first 429.
func NewPacer(perSecond float64) *Pacer {
	c := math.Inf(1)
	if perSecond > 0 {
		c = perSecond
	}
	return &Pacer{ceiling: c, share: 1, lanes: map[string]*lane{}, changed: make(chan struct{})}
}

func (p *Pacer) laneLocked(op string) *lane {
	l, ok := p.lanes[op]
	if !ok {
		l = &lane{site: p.ceiling, fresh: math.IsInf(p.ceiling, 1), answered: make(chan struct{})}
		l.lim = rate.NewLimiter(p.limitLocked(l.site), p.burstLocked(l.site))
		p.lanes[op] = l
	}
	return l
}

func (p *Pacer) limitLocked(site float64) rate.Limit {
	if math.IsInf(site, 1) {
		return rate.Inf
	}
	return rate.Limit(max(site*p.share, minRate*p.share))
}

// burstLocked is a fifth of a second's worth: smooth, but not one by one.
func (p *Pacer) burstLocked(site float64) int {
	if math.IsInf(site, 1) {
		return 1
	}
	return max(1, int(math.Ceil(site*p.share/5)))
}

func (p *Pacer) applyLocked(l *lane, site float64) {
	l.site = min(site, p.ceiling)
	now := time.Now()
	l.lim.SetLimitAt(now, p.limitLocked(l.site))
	l.lim.SetBurstAt(now, p.burstLocked(l.site))
}

// SetShare sets this replica's fraction of the site's rate (1/replicas).
func (p *Pacer) SetShare(f float64) {
	if f <= 0 || f > 1 {
		f = 1
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.share == f {
		return
	}
	p.share = f
	for _, l := range p.lanes {
		p.applyLocked(l, l.site)
	}
}

// OnDecrease is called (outside the pacer's lock) with the new site rate
// and the one Jira refused whenever a 429 slows a lane, to tell the other
// replicas.
func (p *Pacer) OnDecrease(fn func(op string, site, refused float64)) {
	p.mu.Lock()
	p.decrease = fn
	p.mu.Unlock()
}

// Adopt takes another replica's decrease: the lane's site rate drops to
// site if that is lower (a higher one is this replica's own finding to make),
// and climbs as fast as the finder's towards refused.
func (p *Pacer) Adopt(op string, site, refused float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.laneLocked(op)
	l.bad = max(l.bad, refused)
	if site < l.site {
		p.applyLocked(l, site)
		l.decreased = time.Now()
	}
}

// OnHold is called (outside the pacer's lock) with the end of every new
// quota pause this replica meets, to pause the other replicas too.
func (p *Pacer) OnHold(fn func(until time.Time)) {
	p.mu.Lock()
	p.hold = fn
	p.mu.Unlock()
}

// HoldAll stops every lane until t (another replica met a quota 429).
func (p *Pacer) HoldAll(t time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holdLocked(t)
}

func (p *Pacer) holdLocked(t time.Time) {
	if t.After(p.until) {
		p.until = t
		close(p.changed)
		p.changed = make(chan struct{})
	}
}

// Wait blocks until a request of op may be sent.
func (p *Pacer) Wait(ctx context.Context, op string) error {
	p.mu.Lock()
	l := p.laneLocked(op)
	l.waiting++
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		l.waiting--
		p.mu.Unlock()
	}()
	for {
		p.mu.Lock()
		if l.fresh && l.probing {
			answered := l.answered
			p.mu.Unlock()
			t := time.NewTimer(time.Second)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-answered:
				t.Stop()
			case <-t.C:
				// The first caller never sent (or Jira is slow): stop waiting
				// for it.
				p.Answered(op)
			}
			continue
		}
		if l.fresh {
			l.probing = true // this caller's request is the first
		}
		d, ch, lim := time.Until(laterOf(p.until, l.until)), p.changed, l.lim
		p.mu.Unlock()
		if d > 0 {
			if err := sleepUntil(ctx, d, ch); err != nil {
				return err
			}
			continue
		}
		start := time.Now()
		if err := lim.Wait(ctx); err != nil {
			return err
		}
		queued := time.Since(start) > time.Millisecond
		// A quota 429 may have arrived while this caller waited for its token.
		p.mu.Lock()
		now := time.Now()
		blocked := now.Before(laterOf(p.until, l.until))
		if !blocked {
			l.note(now)
			l.queued = queued
		}
		p.mu.Unlock()
		if !blocked {
			return nil
		}
	}
}

func sleepUntil(ctx context.Context, d time.Duration, wake <-chan struct{}) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	case <-wake:
	}
	return nil
}

// lowPoll is how often a low-priority caller looks again while
// normal-priority callers are waiting.
const lowPoll = 10 * time.Millisecond

// WaitLow blocks until a low-priority request of op may be sent: only when
// no normal-priority caller of its lane is waiting and a token is free right
// now, so it never delays one. It takes spare capacity only.
func (p *Pacer) WaitLow(ctx context.Context, op string) error {
	for {
		p.mu.Lock()
		l := p.laneLocked(op)
		now := time.Now()
		var d time.Duration
		ch := p.changed
		switch {
		case now.Before(laterOf(p.until, l.until)):
			d = laterOf(p.until, l.until).Sub(now)
		case l.waiting > 0:
			d = lowPoll
		default:
			// Tokens already counts the reservations of normal callers
			// sleeping in the limiter.
			if tok := l.lim.TokensAt(now); tok < 1 {
				d = max(lowPoll, time.Duration((1-tok)/float64(l.lim.Limit())*float64(time.Second)))
			} else if l.lim.AllowN(now, 1) {
				l.note(now)
				p.mu.Unlock()
				return nil
			} else {
				d = lowPoll
			}
		}
		p.mu.Unlock()
		if err := sleepUntil(ctx, d, ch); err != nil {
			return err
		}
	}
}

func (l *lane) note(now time.Time) {
	l.recent = append(l.recent, now)
	if len(l.recent) > 512 {
		l.recent = l.recent[len(l.recent)-256:]
	}
}

// achieved is the lane's send rate of the last two seconds (this replica):
// over the whole two seconds (steady, conservative: a lane that just
// started counts as slow), and over the time it was sending in them
// (burst, what Jira just took, bucket credit included).
func (l *lane) achieved(now time.Time) (steady, burst float64) {
	n, oldest := 0, now
	for _, t := range l.recent {
		if now.Sub(t) <= 2*time.Second {
			n++
			if t.Before(oldest) {
				oldest = t
			}
		}
	}
	return float64(n) / 2, float64(n) / max(now.Sub(oldest).Seconds(), 0.25)
}

// Throttled records a 429 of op. reason is its RateLimit-Reason: a quota
// stops every lane for retryAfter; otherwise the lane waits out retryAfter
// and slows. limit is the answer's X-RateLimit-Limit, "the allowed requests
// per second" of a rate limit (the rate-limiting page): when Jira says it,
// the lane paces at it, no guessing; 0 when absent.
func (p *Pacer) Throttled(op string, retryAfter time.Duration, reason string, limit float64) {
	now := time.Now()
	p.mu.Lock()
	l := p.laneLocked(op)
	var held time.Time
	if strings.HasPrefix(reason, "jira-quota") {
		if until := now.Add(max(retryAfter, time.Second)); until.After(p.until) {
			held = until
		}
		p.holdLocked(now.Add(max(retryAfter, time.Second)))
	} else if u := now.Add(retryAfter); retryAfter > 0 && u.After(l.until) {
		l.until = u
		close(p.changed)
		p.changed = make(chan struct{})
	}
	if onHold := p.hold; !held.IsZero() && onHold != nil {
		defer onHold(held) // after the unlock below (deferred calls run last)
	}
	// Concurrent 429s are one event: slow down once per second.
	if now.Sub(l.decreased) < time.Second {
		p.mu.Unlock()
		return
	}
	cur, bad := l.site, l.site
	if math.IsInf(cur, 1) {
		// Unpaced: Jira refused somewhere between what was sent steadily and
		// what it took in a burst; start low and climb fast towards that.
		steady, burst := l.achieved(now)
		cur, bad = max(steady/p.share, minRate), burst/p.share
	}
	l.bad = bad
	next := max(cur*0.95, minRate)
	if limit > 0 && !strings.HasPrefix(reason, "jira-quota") {
		// Jira said the rate: pace at it, but a 429 never raises the pace.
		next = max(min(limit, p.ceiling, l.site), minRate)
		l.told = limit
	}
	p.applyLocked(l, next)
	l.decreased = now
	fn := p.decrease
	p.mu.Unlock()
	if fn != nil {
		fn(op, next, bad)
	}
}

// Answered ends a lane's first-request wait, whatever the answer (the
// client calls it after every request).
func (p *Pacer) Answered(op string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.laneLocked(op)
	if l.fresh {
		l.fresh = false
		close(l.answered)
	}
}

// Told takes a normal answer's X-RateLimit-Limit: the endpoint allows
// limit requests a second, so the lane paces at that rate (no higher than
// JIRA_RATE) rather than wait for a 429.
func (p *Pacer) Told(op string, limit float64) {
	if limit <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.laneLocked(op)
	l.told = limit
	if l.site > limit {
		p.applyLocked(l, limit)
	}
}

// Succeeded lets the lane's rate climb additively, by 0.5 % a second of
// the site rate under full load (0.005 per success, divided by the share so
// that all replicas together climb at that pace) — ten times that while far
// below the rate Jira last refused — but only while callers queue for it:
// an idle lane is no evidence that Jira would take more.
func (p *Pacer) Succeeded(op string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.laneLocked(op)
	if math.IsInf(l.site, 1) || l.site >= p.ceiling || !l.queued || (l.told > 0 && l.site >= l.told) {
		return
	}
	step := 0.005
	if l.site < 0.9*l.bad {
		step = 0.05 // well below where Jira refused: that is not the limit
	}
	p.applyLocked(l, l.site+step/p.share)
}

// Rate is the site rate of op's lane in requests per second (+Inf when
// unpaced); the lowest over all lanes when op is "".
func (p *Pacer) Rate(op string) float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if op != "" {
		return p.laneLocked(op).site
	}
	r := p.ceiling
	for _, l := range p.lanes {
		r = min(r, l.site)
	}
	return r
}

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
