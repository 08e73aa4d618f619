package ticketing

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cowjacket/formjira/internal/jira"
	"github.com/cowjacket/formjira/internal/mapping"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/ticket"
)

// result is one create's answer.
type result struct {
	w   *work
	key string
	err error
}

// create sends the owned items to Jira: bulk in platform mode, one request
// each (concurrently) in JSM mode and for items a bulk could not settle.
func (p *Engine) create(ctx context.Context, own []*work, meta *ticket.Meta) error {
	p.knowFloor(ctx)
	var bulk, single []*work
	for _, w := range own {
		if p.cfg.Mapping.Mode() == mapping.ModeJSM || w.single {
			single = append(single, w)
		} else {
			bulk = append(bulk, w)
		}
	}
	results := slices.Concat(p.createOneByOne(ctx, single), p.createInBulk(ctx, bulk))
	byBot, mayRaise := botRefused(results), sync.OnceValues(func() (bool, error) { return p.mayRaiseForCustomers(ctx) })
	var authErr error
	for _, r := range results {
		w := r.w
		if r.err == nil {
			p.seeKeys(r.key)
			rev := w.rev
			w.rev = 0
			if !w.req.LabelsPending {
				p.recordCreated(ctx, w, r.key, rev, false)
				continue
			}
			// JSM without a labels field: the labels follow in an edit.
			p.recordWithLabelsToAdd(ctx, w, r.key, rev)
			continue
		}
		switch {
		case !byBot && onBehalfRefused(w, r.err) && p.requestersRefusal(ctx, w, r.err, mayRaise):
			// The requester's refusal, dead-lettered, or retried (onbehalf.go).
		case Refused(r.err):
			w.notCreated = !jira.MaybeCreated(r.err)
			authErr = r.err
		case errors.Is(r.err, errStaleStamp):
			// Nothing was sent and the claim is still ours: a slow
			// FORMS_TICKETS, not a failure of the event. Go again soon.
			w.notCreated, w.lastErr, w.wait = true, r.err, time.Now()
			p.log.Warn("create not sent: its claim's stamp is too old", "hash", w.hash, "stream_seq", w.it.Seq)
		case errors.Is(r.err, jira.ErrBatchRejected):
			// Jira refused the bulk as a whole, naming no request: find the
			// culprit by sending them one by one, at once.
			w.notCreated, w.single = true, true
			p.transient(w, r.err, 0)
		case errors.Is(r.err, jira.ErrPermanent):
			// Jira refused this one: nothing was created. Free the claim so a
			// replay after the fix starts clean, then dead-letter it.
			if err := p.cfg.Records.Delete(context.WithoutCancel(ctx), w.hash, w.rev); err != nil {
				p.log.Warn("could not free the claim of a rejected event", "hash", w.hash, "err", err)
			}
			w.rev = 0
			p.InvalidateMeta()
			p.deadLetter(ctx, w, stream.ReasonJiraRejected, r.err, fieldErrors(r.err, meta))
		case jira.MaybeCreated(r.err):
			// Outcome unknown: never create again before a search, after
			// Jira's index had time to show it.
			w.notCreated = false
			// An early 5xx (a gateway's) may leave Jira still creating:
			// never end the stamp's window sooner.
			nr := *w.rec
			if soon := time.Now().Add(p.cfg.ReconcileDelay); soon.After(nr.RecheckAfter) {
				nr.RecheckAfter = soon
			}
			nr.FirstFailure = cmpFirst(w.firstFail, time.Now())
			if rev, err := p.cfg.Records.Put(context.WithoutCancel(ctx), w.hash, &nr, w.rev); err == nil {
				w.rev, w.rec = rev, &nr
			}
			// Once settled, retry it alone: a request that makes Jira fail
			// must not take a whole bulk down with it every time.
			w.single = true
			p.transient(w, r.err, min(p.cfg.ReconcileDelay, time.Second))
		default:
			w.notCreated = true
			p.transient(w, r.err, jira.RetryAfter(r.err))
		}
	}
	return authErr
}

// takeTurn waits for the shared pacer (and any Retry-After) so that the
// claim stamped next is followed by the request at once.
func (p *Engine) takeTurn(ctx context.Context, op string) (context.Context, error) {
	if p.cfg.Pacer == nil {
		return ctx, nil
	}
	if err := p.cfg.Pacer.Wait(ctx, op); err != nil {
		return nil, err
	}
	return jira.Paced(ctx), nil
}

// unusedTurn gives back a turn taken for a create that was not sent, so
// that a new endpoint's lane, waiting for its first answer, goes on.
func (p *Engine) unusedTurn(op string) {
	if p.cfg.Pacer != nil {
		p.cfg.Pacer.Answered(op)
	}
}

// stamp re-writes our claim just before the create is sent: it fences off
// a worker that took the claim over meanwhile (revision check) and starts
// RecheckAfter from now. false: the claim is no longer ours.
func (p *Engine) stamp(ctx context.Context, w *work) bool {
	now := time.Now()
	attempt := 1
	if w.rec != nil {
		attempt = max(w.rec.Attempt, 1)
	}
	r := p.claimRecord(w, now)
	r.Attempt = attempt // the same attempt, stamped again: not a second one
	rev, err := p.cfg.Records.Put(ctx, w.hash, r, w.rev)
	if err != nil {
		w.rev = 0
		if !errors.Is(err, stream.ErrConflict) {
			p.transient(w, err, 0)
		}
		return false
	}
	w.rev, w.stamped = rev, now
	return true
}

// errStaleStamp: a claim's stamp is too old to send its create under.
var errStaleStamp = errors.New("claim stamp too old to send under (slow FORMS_TICKETS writes)")

// stampRounds bounds the stamping of one create when the writes are slow.
const stampRounds = 3

// stampFresh stamps ws concurrently (one after the other, a slow
// FORMS_TICKETS would age a bulk's first stamps), and again while the
// oldest stamp leaves too little time to send. It returns the works still
// ours, in order, and when their create must end (createDeadline); false:
// still too old after stampRounds, send nothing.
func (p *Engine) stampFresh(ctx context.Context, ws []*work) ([]*work, time.Time, bool) {
	for range stampRounds {
		ok := make([]bool, len(ws))
		var wg sync.WaitGroup
		for i, w := range ws {
			wg.Go(func() { ok[i] = p.stamp(ctx, w) })
		}
		wg.Wait()
		var mine []*work
		for i, w := range ws {
			if ok[i] {
				mine = append(mine, w)
			}
		}
		if ws = mine; len(ws) == 0 {
			return nil, time.Time{}, false
		}
		if by, fresh := p.createDeadline(ws...); fresh {
			return ws, by, true
		}
	}
	return ws, time.Time{}, false
}

// createDeadline is when a create carrying ws must have ended, client
// side (jira.SendBy): the oldest stamp plus JIRA_TIMEOUT. Another worker
// may take a claim over from stamp + JIRA_TIMEOUT + RECONCILE_DELAY on,
// trusting that by then the create has ended and Jira's search shows what
// it did; a request still in flight then would make a second ticket.
// false: less than half of JIRA_TIMEOUT is left, too little to send.
func (p *Engine) createDeadline(ws ...*work) (time.Time, bool) {
	var oldest time.Time
	for _, w := range ws {
		if oldest.IsZero() || w.stamped.Before(oldest) {
			oldest = w.stamped
		}
	}
	by := oldest.Add(p.cfg.JiraTimeout)
	return by, time.Until(by) >= p.cfg.JiraTimeout/2
}

func cmpFirst(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// transient records a retryable failure of w; notBefore delays its retry.
func (p *Engine) transient(w *work, err error, notBefore time.Duration) {
	if errors.Is(err, jira.ErrCircuitOpen) {
		// Jira is down: nothing was sent; wait for it, counting nothing.
		w.held, w.lastErr = true, err
		return
	}
	now := time.Now()
	w.attempts++
	w.lastErr = err
	w.lastFail = now
	w.firstFail = cmpFirst(w.firstFail, now)
	w.wait = now.Add(notBefore)
	p.log.Warn("transient failure", "hash", w.hash, "stream_seq", w.it.Seq, "attempt", w.attempts, "delivery", w.it.Delivery, "err", err)
}

// fieldErrors names each field Jira refused by id and name.
func fieldErrors(err error, meta *ticket.Meta) []string {
	var ae *jira.APIError
	if !errors.As(err, &ae) {
		return nil
	}
	byID := ae.FieldErrors
	if len(byID) == 0 {
		byID = namedFields(ae.Messages, meta)
	}
	var out []string
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		name := id
		if meta != nil {
			if fm, ok := meta.Fields[id]; ok && fm.Name != "" {
				name = fm.Name
			}
		}
		out = append(out, fmt.Sprintf("%s (%s): %s", id, name, byID[id]))
	}
	return out
}

// namedFields finds the fields a message names in quotes, as JSM sites
// word a refused request ("… valid value for field 'Department'"): JSM's
// errors carry one translated sentence, no field ids. Each field gets the
// sentence that names it.
func namedFields(msgs []string, meta *ticket.Meta) map[string]string {
	out := map[string]string{}
	if meta == nil {
		return out
	}
	for _, msg := range msgs {
		var sentences []string
		for _, part := range strings.FieldsFunc(msg, func(r rune) bool { return r == ';' || r == '\n' }) {
			sentences = append(sentences, strings.Split(part, ". ")...)
		}
		for _, sentence := range sentences {
			for id, fm := range meta.Fields {
				if fm.Name != "" && (strings.Contains(sentence, "'"+fm.Name+"'") || strings.Contains(sentence, `"`+fm.Name+`"`)) {
					out[id] = strings.TrimSpace(sentence)
				}
			}
		}
	}
	return out
}

func (p *Engine) createOneByOne(ctx context.Context, ws []*work) []result {
	results := make([]result, len(ws))
	op := jira.OpCreate
	if p.cfg.Mapping.Mode() == mapping.ModeJSM {
		op = jira.OpRequestCreate
	}
	g := errgroup.Group{}
	g.SetLimit(p.cfg.Concurrency)
	for i, w := range ws {
		g.Go(func() error {
			pctx, err := p.takeTurn(ctx, op)
			if err != nil {
				results[i] = result{w, "", err}
				return nil
			}
			mine, by, ok := p.stampFresh(ctx, []*work{w})
			if !ok {
				p.unusedTurn(op)
				if len(mine) > 0 { // still ours, only its stamp too old
					results[i] = result{w, "", errStaleStamp}
				}
				return nil
			}
			w.sent = true
			key, err := p.cfg.Jira.Create(jira.SendBy(pctx, by), w.req)
			results[i] = result{w, key, err}
			return nil
		})
	}
	_ = g.Wait()
	return slices.DeleteFunc(results, func(r result) bool { return r.w == nil })
}

func (p *Engine) createInBulk(ctx context.Context, ws []*work) []result {
	var results []result
	for chunk := range slices.Chunk(ws, p.cfg.BatchSize) {
		pctx, err := p.takeTurn(ctx, jira.OpBulkCreate)
		if err != nil {
			for _, w := range chunk {
				results = append(results, result{w, "", err})
			}
			continue
		}
		stamped, by, ok := p.stampFresh(ctx, chunk)
		if !ok {
			p.unusedTurn(jira.OpBulkCreate)
			for _, w := range stamped {
				results = append(results, result{w, "", errStaleStamp})
			}
			continue
		}
		reqs := make([]*ticket.Request, len(stamped))
		for i, w := range stamped {
			reqs[i], w.sent = w.req, true
		}
		rs, _ := p.cfg.Jira.BulkCreate(jira.SendBy(pctx, by), reqs)
		for i, w := range stamped {
			results = append(results, result{w, rs[i].Key, rs[i].Err})
		}
	}
	return results
}
