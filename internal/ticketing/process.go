package ticketing

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"

	"github.com/sethvargo/go-retry"

	"github.com/cowjacket/formjira/internal/jira"
	"github.com/cowjacket/formjira/internal/mapping"
	"github.com/cowjacket/formjira/internal/pause"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/ticket"
)

// work is one item's state across the passes of a Process call.
type work struct {
	it     Item
	ev     *formsv1.FormSubmission
	hash   string
	req    *ticket.Request
	rev    uint64         // revision of our own claim, 0 = none
	rec    *stream.Record // last record seen
	recRev uint64
	// notCreated: our last create attempt provably created nothing, so the
	// next one needs no reconciliation.
	notCreated bool
	sent       bool      // we sent a create in this call
	stamped    time.Time // when our claim was last stamped for a create
	forced     bool
	attempts   int
	firstFail  time.Time
	lastFail   time.Time
	lastErr    error
	wait       time.Time // retry not before
	reconcile  bool
	resolved   bool  // the requester's account is in req
	held       bool  // Jira is down: wait for the circuit to close
	single     bool  // create alone, not in a bulk (a bulk could not settle it)
	authErr    error // Jira refused the credentials for this work
	out        *Outcome
}

// Process handles items end to end and returns one Outcome per item, in
// order. It retries transient failures with exponential backoff and jitter
// within RetryWindow, honouring Retry-After; it never returns an error: the
// outcomes say what to do with each message.
func (p *Engine) Process(ctx context.Context, items []Item) []Outcome {
	ws := make([]*work, len(items))
	byHash := map[string]*work{}
	for i, it := range items {
		w := &work{it: it}
		ws[i] = w
		ev, err := stream.Unmarshal(it.Data)
		if err != nil {
			p.deadLetter(ctx, w, stream.ReasonUndecodable, err, nil)
			continue
		}
		w.ev, w.hash = ev, ev.GetHash()
		if w.hash == "" {
			p.deadLetter(ctx, w, stream.ReasonUnmappable, errors.New("event has no record hash"), nil)
			continue
		}
		if first := byHash[w.hash]; first != nil {
			// The same request twice in one batch: one ticket, by the first.
			w.out = &Outcome{Status: StatusSkipped, Duplicate: true}
			continue
		}
		byHash[w.hash] = w
	}

	stopKeepAlive := p.keepAlive(ws)
	defer stopKeepAlive()

	start := time.Now()
	b := retry.WithJitterPercent(20, retry.WithCappedDuration(p.cfg.MaxBackoff, retry.NewExponential(p.cfg.MinBackoff)))
	for pass := 0; ; pass++ {
		if auth := p.pass(ctx, ws); auth != nil {
			for _, w := range ws {
				if w.out == nil {
					w.out = &Outcome{Status: StatusAuth, Err: auth}
					p.metrics.failed("auth")
				}
			}
			break
		}
		pending := pendingOf(ws)
		if len(pending) == 0 {
			break
		}
		// Wait for the latest of: the backoff step, the earliest item's
		// not-before (Retry-After, a young claim's recheck time).
		d, _ := b.Next()
		earliest := time.Time{}
		for _, w := range pending {
			if earliest.IsZero() || w.wait.Before(earliest) {
				earliest = w.wait
			}
		}
		d = max(d, time.Until(earliest))
		if time.Since(start)+d > p.cfg.RetryWindow || !sleep(ctx, d) {
			p.giveUp(ctx, pending, d)
			break
		}
		for _, w := range pending {
			if w.attempts > 0 {
				p.metrics.retry()
			}
		}
	}
	for _, w := range ws {
		if w.out == nil && w.held {
			w.out = &Outcome{Status: StatusHeld, Err: w.lastErr}
		}
		if w.out != nil && w.out.Status != StatusCreated && w.out.Status != StatusSkipped && w.out.Status != StatusDeadLettered {
			p.releaseClaim(ctx, w)
		}
	}
	out := make([]Outcome, len(ws))
	for i, w := range ws {
		if w.out == nil { // cannot happen; never lose an event silently
			w.out = &Outcome{Status: StatusRetry, Err: errors.New("unprocessed")}
		}
		if w.out.Duplicate {
			if first := byHash[w.hash]; first.out.Status == StatusCreated || first.out.Status == StatusSkipped {
				w.out.Key = first.out.Key
			}
		}
		out[i] = *w.out
		out[i].Hash = w.hash
	}
	return out
}

// pendingOf are the works still to try: neither resolved nor held for an
// outage.
func pendingOf(ws []*work) []*work {
	var out []*work
	for _, w := range ws {
		if w.out == nil && !w.held {
			out = append(out, w)
		}
	}
	return out
}

// sleep waits d; false if ctx ended or a soft stop came first.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	return pause.Or(ctx, d, softStop(ctx))
}

// keepAlive tells the server every item is still being worked on: at once
// (a message may have waited in the pull buffer) and then periodically. The
// items are settled only after Process returns, so all of them qualify.
func (p *Engine) keepAlive(ws []*work) func() {
	fns := make([]func(), 0, len(ws))
	for _, w := range ws {
		fns = append(fns, w.it.KeepAlive)
	}
	return KeepAlive(fns, p.cfg.KeepAliveEvery)
}

// KeepAlive calls each of fns (nil ones skipped) now and every period until
// the returned stop: InProgress for messages a caller holds.
func KeepAlive(fns []func(), every time.Duration) (stop func()) {
	fns = slices.DeleteFunc(slices.Clone(fns), func(f func()) bool { return f == nil })
	if len(fns) == 0 {
		return func() {}
	}
	touch := func() {
		for _, f := range fns {
			f()
		}
	}
	touch()
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				touch()
			}
		}
	}()
	return func() { close(done) }
}

// giveUp ends the call for items still failing: redelivery later. A
// failure of the event itself — our claim, a real error, Jira otherwise
// working, the retry window used up rather than cut short by shutdown — is
// counted in its record, and at MaxFailures the event is dead-lettered as
// exhausted.
func (p *Engine) giveUp(ctx context.Context, pending []*work, next time.Duration) {
	stopping := ctx.Err() != nil
	select {
	case <-softStop(ctx):
		stopping = true
	default:
	}
	dctx := ctx
	if ctx.Err() != nil {
		// The writes outlive a cancelled ctx, briefly.
		var cancel context.CancelFunc
		dctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
	}
	for _, w := range pending {
		err := w.lastErr
		if err == nil {
			err = errors.New("ticket outcome still unknown (waiting for Jira's search to catch up)")
		}
		if n := p.countFailure(dctx, w, stopping); n >= p.cfg.MaxFailures {
			p.freeClaim(dctx, w)
			p.deadLetter(dctx, w, stream.ReasonExhausted, fmt.Errorf("gave up after %d failed deliveries while Jira otherwise worked: %w", n, err), nil)
			if w.out != nil {
				continue
			}
		}
		w.out = &Outcome{Status: StatusRetry, Err: err, RetryIn: max(next, time.Until(w.wait))}
		p.metrics.failed("transient")
	}
}

// countFailure adds this delivery's failure to w's record when it is the
// event's own (see giveUp) and returns the count; 0 when it does not count.
func (p *Engine) countFailure(ctx context.Context, w *work, stopping bool) int {
	if stopping || w.it.NoDeadLetter || w.rev == 0 || w.rec == nil || !p.eventsOwn(w) {
		return 0
	}
	r := *w.rec
	r.Failures++
	rev, err := p.cfg.Records.Put(ctx, w.hash, &r, w.rev)
	if err != nil {
		p.log.Warn("could not count the event's failure; it is retried all the same", "hash", w.hash, "err", err)
		return 0
	}
	w.rev, w.rec = rev, &r
	return r.Failures
}

// eventsOwn reports whether w's last failure is the event's, not Jira's or
// the store's.
func (p *Engine) eventsOwn(w *work) bool {
	switch err := w.lastErr; {
	case w.attempts == 0 || err == nil:
		return false // only waited (a young claim's search window): no failed call
	case errors.Is(err, errStaleStamp):
		return false // the store was slow stamping the claim
	case jira.Throttled(err):
		return false // Jira paces the site
	case jira.Down(err) && p.cfg.Health != nil && !p.cfg.Health.AnsweredSince(w.firstFail):
		return false // failed as an outage would, and Jira answered nothing else meanwhile
	}
	return true
}

// releaseClaim ends the search window of w's own claim when its last
// attempt provably created nothing (a 429 outlasting the retry window, the
// circuit, a refusal): the next delivery takes it over at once instead of
// waiting JIRA_TIMEOUT + RECONCILE_DELAY. The record stays: it counts the
// event's failures.
func (p *Engine) releaseClaim(ctx context.Context, w *work) {
	if w.rev == 0 || !w.notCreated || w.rec == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	r := *w.rec
	r.RecheckAfter = time.Now()
	if rev, err := p.cfg.Records.Put(ctx, w.hash, &r, w.rev); err == nil {
		w.rev, w.rec = rev, &r
	}
}

// freeClaim deletes w's own claim when its last attempt provably created
// nothing, so a later replay need not wait to reconcile it.
func (p *Engine) freeClaim(ctx context.Context, w *work) {
	if w.rev == 0 || !w.notCreated {
		return
	}
	if err := p.cfg.Records.Delete(context.WithoutCancel(ctx), w.hash, w.rev); err != nil {
		p.log.Warn("could not free the claim of a dead-lettered event", "hash", w.hash, "err", err)
	}
	w.rev = 0
}

// pass makes one attempt at every unresolved item. It returns an auth
// error when Jira refused the credentials.
func (p *Engine) pass(ctx context.Context, ws []*work) error {
	now := time.Now()
	var ready []*work
	for _, w := range ws {
		if w.out == nil && !w.wait.After(now) {
			ready = append(ready, w)
		}
	}
	if len(ready) == 0 {
		return nil
	}
	meta, err := p.Meta(ctx)
	if err != nil {
		return p.failAll(ready, err)
	}
	// 1. Map, then claim (or find the claim's state).
	var own, rec []*work
	for _, w := range ready {
		if w.req == nil && !p.build(ctx, w, meta) {
			continue
		}
		switch err := p.claim(ctx, w); {
		case err != nil:
			p.transient(w, err, 0)
		case w.out != nil:
		case w.reconcile:
			rec = append(rec, w)
		case w.rev != 0:
			own = append(own, w)
		}
	}
	// 2. Reconcile unknown outcomes by searching for the hash.
	if len(rec) > 0 {
		if err := p.reconcile(ctx, rec); err != nil {
			if Refused(err) {
				return err
			}
			for _, w := range rec {
				p.transient(w, err, jira.RetryAfter(err))
			}
		}
		for _, w := range rec {
			if w.out == nil && w.rev != 0 && !w.reconcile {
				own = append(own, w)
			}
		}
	}
	// 3. Put the requester's account in, then create what we own.
	own = p.resolve(ctx, own)
	for _, w := range ws {
		if w.authErr != nil {
			err, w.authErr = w.authErr, nil
			return err
		}
	}
	if len(own) == 0 {
		return nil
	}
	return p.create(ctx, own, meta)
}

func (p *Engine) failAll(ws []*work, err error) error {
	if Refused(err) {
		return err
	}
	for _, w := range ws {
		p.transient(w, err, jira.RetryAfter(err))
	}
	return nil
}

// build maps the event; false when it was dead-lettered (or must wait).
func (p *Engine) build(ctx context.Context, w *work, meta *ticket.Meta) bool {
	req, err := p.cfg.Mapping.Build(w.ev, meta)
	if err != nil && errors.Is(err, mapping.ErrUnmappable) && p.metaAge() > time.Minute {
		// An option may have been added in Jira since: look again once.
		p.InvalidateMeta()
		if fresh, merr := p.Meta(ctx); merr == nil {
			req, err = p.cfg.Mapping.Build(w.ev, fresh)
		}
	}
	if err != nil {
		var fes []string
		for _, fe := range mapping.Problems(err) {
			fes = append(fes, fe.Error())
		}
		p.deadLetter(ctx, w, stream.ReasonUnmappable, err, fes)
		return false
	}
	w.req = req
	return true
}
