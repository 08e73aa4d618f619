package ticketing

import (
	"context"
	"errors"
	"time"

	"github.com/cowjacket/formjira/internal/stream"
)

// claim makes w the owner of its hash (w.rev) or finds why it is not:
// already created (w.out), or claimed with an unknown outcome (w.reconcile).
func (p *Engine) claim(ctx context.Context, w *work) error {
	now := time.Now()
	w.reconcile = false
	if w.rev != 0 && w.notCreated {
		// Our own claim and our last attempt did nothing: refresh and go.
		rev, err := p.cfg.Records.Put(ctx, w.hash, p.claimRecord(w, now), w.rev)
		if err == nil {
			w.rev = rev
			return nil
		}
		if !errors.Is(err, stream.ErrConflict) {
			return err
		}
		w.rev = 0 // someone took the claim over: look again
	}
	for range 3 {
		r, rev, err := p.cfg.Records.Get(ctx, w.hash)
		if err != nil {
			return err
		}
		w.rec, w.recRev = r, rev
		if rev != w.rev {
			// Not (or not provably) our claim any more: never write this
			// view of it back at our revision (a follower's read may be
			// stale; writes from it go at recRev, compare-and-set).
			w.rev = 0
		}
		if r != nil && !r.FirstFailure.IsZero() && (w.firstFail.IsZero() || r.FirstFailure.Before(w.firstFail)) {
			w.firstFail = r.FirstFailure
		}
		switch {
		case r == nil:
			n, err := p.cfg.Records.Put(ctx, w.hash, p.claimRecord(w, now), 0)
			if errors.Is(err, stream.ErrConflict) {
				continue
			}
			if err != nil {
				return err
			}
			w.rev = n
			return nil
		case r.State == stream.StateCreated && w.it.Force && !w.forced:
			n, err := p.cfg.Records.Put(ctx, w.hash, p.claimRecord(w, now), rev)
			if errors.Is(err, stream.ErrConflict) {
				continue
			}
			if err != nil {
				return err
			}
			w.rev, w.forced = n, true
			p.log.Warn("forced re-creation of a recorded ticket", "hash", w.hash, "jira_key", r.Key, "stream_seq", w.it.Seq)
			return nil
		case r.State == stream.StateCreated:
			if r.LabelsPending && w.req != nil && w.req.LabelsPending && r.Key != "" {
				// A crash or a refusal left the labels out: try again.
				p.labels.Submit(ctx, stream.LabelJob{Hash: w.hash, Key: r.Key, Labels: w.req.Labels, Since: time.Now()})
			}
			w.out = &Outcome{Status: StatusSkipped, Key: r.Key}
			if w.sent {
				w.out.Status = StatusCreated
			}
			p.count(w.out)
			return nil
		default:
			w.reconcile = true
			return nil
		}
	}
	return errors.New("ticket record keeps changing under us")
}

func (p *Engine) claimRecord(w *work, now time.Time) *stream.Record {
	attempt, failures := 1, 0
	if w.rec != nil {
		attempt, failures = w.rec.Attempt+1, w.rec.Failures
	}
	r := &stream.Record{
		State:        stream.StateClaimed,
		ClaimedAt:    now,
		RecheckAfter: now.Add(p.cfg.JiraTimeout + p.cfg.ReconcileDelay),
		Attempt:      attempt,
		StreamSeq:    w.it.Seq,
		FirstFailure: w.firstFail,
		Failures:     failures,
		KeyFrom:      p.keyFrom(),
	}
	w.rec = r
	return r
}

// recordWithLabelsToAdd records w's ticket, created (or found) without its
// labels: they follow in an edit, deferred to spare capacity (package labeledit).
// The marker goes first, so even a crash before the record leaves the key
// known.
func (p *Engine) recordWithLabelsToAdd(ctx context.Context, w *work, key string, rev uint64) {
	job := stream.LabelJob{Hash: w.hash, Key: key, Labels: w.req.Labels, Since: time.Now()}
	p.labels.Mark(ctx, job)
	p.recordCreated(ctx, w, key, rev, true)
	p.labels.Submit(ctx, job)
}

// recordCreated writes the key for w (at rev) and resolves it.
// labelsPending marks the record until the deferred label edit is done.
func (p *Engine) recordCreated(ctx context.Context, w *work, key string, rev uint64, labelsPending bool) {
	now := time.Now()
	r := &stream.Record{State: stream.StateCreated, Key: key, ClaimedAt: now, Attempt: 1, StreamSeq: w.it.Seq, CreatedAt: now,
		LabelsPending: labelsPending}
	if ct := w.ev.GetSource().GetCommitTime(); ct.IsValid() && ct.AsTime().Unix() > 0 {
		r.CommitTime = ct.AsTime()
	}
	if w.rec != nil {
		r.ClaimedAt, r.FirstFailure, r.Attempt = w.rec.ClaimedAt, w.rec.FirstFailure, max(w.rec.Attempt, 1)
	}
	// The ticket exists whatever happens next: keep trying to record it,
	// even past a shutdown, because an unrecorded key costs a search later.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var err error
	for attempt := range 5 {
		if _, err = p.cfg.Records.Put(wctx, w.hash, r, rev); err == nil || errors.Is(err, stream.ErrConflict) {
			break
		}
		if !sleep(wctx, time.Duration(attempt+1)*100*time.Millisecond) {
			break
		}
	}
	status := StatusSkipped
	if w.sent {
		status = StatusCreated
		if !r.CommitTime.IsZero() {
			p.metrics.commitToTicket(max(r.CreatedAt.Sub(r.CommitTime), 0))
		}
	}
	w.out = &Outcome{Status: status, Key: key}
	switch {
	case errors.Is(err, stream.ErrConflict):
		// Another worker recorded or took the claim meanwhile.
		cur, _, gerr := p.cfg.Records.Get(wctx, w.hash)
		if gerr == nil && cur != nil && cur.State == stream.StateCreated && cur.Key != key {
			p.log.Error("two tickets for one request", "hash", w.hash, "jira_key", key, "recorded_key", cur.Key)
		}
	case err != nil:
		// Not recorded: the search still finds it, so no second ticket.
		p.log.Warn("ticket created but not recorded; the next delivery finds it by its hash", "hash", w.hash, "jira_key", key, "err", err)
	}
	p.count(w.out)
	p.log.Debug("ticket recorded", "hash", w.hash, "jira_key", key, "stream_seq", w.it.Seq, "status", status.String())
}

func (p *Engine) count(o *Outcome) {
	switch o.Status {
	case StatusCreated:
		p.metrics.created()
	case StatusSkipped:
		p.metrics.skipped()
	}
}
