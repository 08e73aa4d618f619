package jira

import (
	"context"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Pacer is the one gate every request to Jira passes, shared by all
// workers: a token bucket at the configured rate, plus a hard stop until a
// 429's Retry-After has elapsed. On a 429 it halves its rate (measuring the
// rate actually achieved when it was unpaced) and creeps back up with every
// success, so a fleet of workers settles just under Jira's quota instead of
// hammering it.
type Pacer struct {
	mu      sync.Mutex
	lim     *rate.Limiter
	base    rate.Limit // configured ceiling; Inf = unpaced
	until   time.Time  // no request before this
	recent  []time.Time
	changed chan struct{} // closed when until moves, to re-check sleepers
	waiting int           // normal-priority callers inside Wait
}

// minRate is the floor of the slow-down: Jira's quotas are per second.
const minRate = 0.5

// NewPacer paces at perSecond requests per second; 0 means unpaced until the
// first 429.
func NewPacer(perSecond float64) *Pacer {
	base := rate.Inf
	if perSecond > 0 {
		base = rate.Limit(perSecond)
	}
	burst := max(1, int(math.Ceil(perSecond/5)))
	return &Pacer{lim: rate.NewLimiter(base, burst), base: base, changed: make(chan struct{})}
}

// Wait blocks until a request may be sent.
func (p *Pacer) Wait(ctx context.Context) error {
	p.mu.Lock()
	p.waiting++
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.waiting--
		p.mu.Unlock()
	}()
	for {
		p.mu.Lock()
		d, ch := time.Until(p.until), p.changed
		p.mu.Unlock()
		if d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			case <-ch:
				t.Stop()
			}
			continue
		}
		if err := p.lim.Wait(ctx); err != nil {
			return err
		}
		// A 429 may have arrived while this worker waited for its token.
		p.mu.Lock()
		blocked := time.Now().Before(p.until)
		if !blocked {
			p.noteLocked(time.Now())
		}
		p.mu.Unlock()
		if !blocked {
			return nil
		}
	}
}

// lowPoll is how often a low-priority caller looks again while
// normal-priority callers are waiting.
const lowPoll = 10 * time.Millisecond

// WaitLow blocks until a low-priority request may be sent: only when no
// normal-priority caller is waiting (in Wait) and a token is free right
// now, so it never delays one. It takes spare capacity only; under a
// sustained load of normal requests it waits until the load eases.
func (p *Pacer) WaitLow(ctx context.Context) error {
	for {
		p.mu.Lock()
		now := time.Now()
		var d time.Duration
		ch := p.changed
		switch {
		case now.Before(p.until):
			d = p.until.Sub(now)
		case p.waiting > 0:
			d = lowPoll
		default:
			// Tokens already counts the reservations of normal callers
			// sleeping in the limiter.
			if tok := p.lim.TokensAt(now); tok < 1 {
				d = max(lowPoll, time.Duration((1-tok)/float64(p.lim.Limit())*float64(time.Second)))
			} else if p.lim.AllowN(now, 1) {
				p.noteLocked(now)
				p.mu.Unlock()
				return nil
			} else {
				d = lowPoll
			}
		}
		p.mu.Unlock()
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		case <-ch:
			t.Stop()
		}
	}
}

func (p *Pacer) noteLocked(now time.Time) {
	p.recent = append(p.recent, now)
	if len(p.recent) > 256 {
		p.recent = p.recent[len(p.recent)-128:]
	}
}

// Throttled records a 429: nobody sends before retryAfter has elapsed, and
// the rate is halved.
func (p *Pacer) Throttled(retryAfter time.Duration) {
	if retryAfter <= 0 {
		retryAfter = time.Second
	}
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if u := now.Add(retryAfter); u.After(p.until) {
		p.until = u
		close(p.changed)
		p.changed = make(chan struct{})
	}
	cur := p.lim.Limit()
	if cur == rate.Inf {
		cur = rate.Limit(p.achievedLocked(now))
	}
	next := max(cur/2, minRate)
	p.lim.SetLimitAt(now, next)
	p.lim.SetBurstAt(now, 1)
}

// achievedLocked is the request rate of the last two seconds.
func (p *Pacer) achievedLocked(now time.Time) float64 {
	n := 0
	for _, t := range p.recent {
		if now.Sub(t) <= 2*time.Second {
			n++
		}
	}
	return float64(n) / 2
}

// Succeeded lets the rate recover additively towards the configured one.
func (p *Pacer) Succeeded() {
	p.mu.Lock()
	defer p.mu.Unlock()
	cur := p.lim.Limit()
	if cur == p.base {
		return
	}
	next := cur + max(cur/50, 0.05)
	if p.base != rate.Inf && next >= p.base {
		next = p.base
	} else if p.base == rate.Inf && next > 1000 {
		next = rate.Inf
	}
	p.lim.SetLimit(next)
}

// Rate is the current pace in requests per second (+Inf when unpaced).
func (p *Pacer) Rate() float64 { return float64(p.lim.Limit()) }
