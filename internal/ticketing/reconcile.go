package ticketing

import (
	"context"
	"errors"
	"time"

	"github.com/cowjacket/formjira/internal/stream"
)

// reconcile searches Jira for the tickets of claims whose outcome is
// unknown, by what the create itself carried: the hash label, or, for a
// JSM request whose labels follow in a later edit (LabelsPending), the
// record hash in its description. Found: the ticket exists, record it. Not
// found: trust it only once the claim's RecheckAfter has passed, then take
// the claim over.
func (p *Engine) reconcile(ctx context.Context, ws []*work) error {
	var labels, hashes []string
	for _, w := range ws {
		if w.req.LabelsPending {
			hashes = append(hashes, w.hash)
		} else {
			labels = append(labels, w.req.HashLabel)
		}
	}
	byLabel, byText := map[string][]string{}, map[string][]string{}
	var err error
	if len(labels) > 0 {
		if byLabel, err = p.cfg.Jira.FindByLabels(ctx, labels); err != nil {
			return err
		}
	}
	if len(hashes) > 0 {
		if byText, err = p.cfg.Jira.FindByText(ctx, p.cfg.Mapping.Project(), hashes); err != nil {
			return err
		}
	}
	now := time.Now()
	for _, w := range ws {
		keys := byLabel[w.req.HashLabel]
		if w.req.LabelsPending {
			keys = byText[w.hash]
		}
		if len(keys) > 0 {
			if len(keys) > 1 {
				p.log.Error("more than one ticket carries the record hash", "hash", w.hash, "jira_keys", keys)
			}
			p.recordCreated(ctx, w, keys[0], w.recRev, false)
			w.reconcile = false
			continue
		}
		if now.Before(w.rec.RecheckAfter) {
			// Jira's search may not show a recent create yet: look again later.
			w.wait = w.rec.RecheckAfter
			p.log.Debug("claim too young to trust an empty search", "hash", w.hash, "stream_seq", w.it.Seq, "recheck_after", w.rec.RecheckAfter)
			continue
		}
		rev, err := p.cfg.Records.Put(ctx, w.hash, p.claimRecord(w, now), w.recRev)
		if err != nil {
			if !errors.Is(err, stream.ErrConflict) {
				p.transient(w, err, 0)
			}
			continue // conflict: look again on the next pass
		}
		p.log.Info("taking over a claim whose attempt created nothing", "hash", w.hash, "stream_seq", w.it.Seq, "attempt", w.rec.Attempt)
		w.rev, w.reconcile = rev, false
	}
	return nil
}
