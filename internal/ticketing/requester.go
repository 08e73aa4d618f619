package ticketing

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/cowjacket/formjira/internal/jira"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/ticket"
)

// Requesters finds the Jira account of a request's requester
// (*customers.Resolver has it): errors wrap ticket.ErrNoAccount when Jira
// lets the bot neither find nor create one; others are Jira's or NATS's,
// retried. OnDesk asks Jira whether the requester is a customer of the
// service desk (after a refused create: onbehalf.go).
type Requesters interface {
	AccountID(ctx context.Context, p ticket.Person) (string, error)
	OnDesk(ctx context.Context, p ticket.Person) (bool, error)
}

// resolve puts each owned request's requester account in place, before the
// create; it returns the works ready to create. A requester without an
// account dead-letters its event (the reason names the missing permission)
// unless the mapping says to raise it as the bot.
func (p *Engine) resolve(ctx context.Context, own []*work) []*work {
	if p.cfg.Requesters == nil {
		return own
	}
	errs := make([]error, len(own))
	g := errgroup.Group{}
	g.SetLimit(p.cfg.Concurrency)
	for i, w := range own {
		if w.req.Requester == nil || w.resolved {
			continue
		}
		g.Go(func() error {
			id, err := p.cfg.Requesters.AccountID(ctx, *w.req.Requester)
			if err == nil {
				w.req.SetRequester(id)
				w.resolved = true
			}
			errs[i] = err
			return nil
		})
	}
	_ = g.Wait()
	ready := own[:0:0]
	for i, w := range own {
		switch err := errs[i]; {
		case err == nil:
			ready = append(ready, w)
		case errors.Is(err, ticket.ErrNoAccount) && w.req.AsBotWithoutAccount:
			p.log.Warn("no account for the requester; raising the ticket as the bot (mapping: unknown_requester: raise_as_bot)",
				"hash", w.hash, "stream_seq", w.it.Seq, "err", err)
			w.resolved = true
			ready = append(ready, w)
		case errors.Is(err, ticket.ErrNoAccount):
			p.freeOwnClaim(ctx, w)
			p.deadLetter(ctx, w, stream.ReasonPermission, fmt.Errorf("requester %s: %w", w.req.Requester.Email, err), []string{
				"requester (" + w.req.Requester.Email + "): " + err.Error()})
		case Refused(err):
			w.notCreated = true
			w.authErr = err
		case errors.Is(err, jira.ErrPermanent):
			// Jira refused the requester itself (e.g. an address it does
			// not take for a customer): retrying cannot help.
			p.freeOwnClaim(ctx, w)
			p.deadLetter(ctx, w, stream.ReasonJiraRejected, fmt.Errorf("requester %s: %w", w.req.Requester.Email, err), []string{
				"requester (" + w.req.Requester.Email + "): " + err.Error()})
		default:
			w.notCreated = true // nothing was sent: the next attempt needs no search
			p.transient(w, err, jira.RetryAfter(err))
		}
	}
	return ready
}

// freeOwnClaim deletes our claim of w when nothing was sent for it, so a
// replay after the fix starts clean.
func (p *Engine) freeOwnClaim(ctx context.Context, w *work) {
	if w.rev == 0 {
		return
	}
	if err := p.cfg.Records.Delete(context.WithoutCancel(ctx), w.hash, w.rev); err != nil {
		p.log.Warn("could not free the claim of a dead-lettered event", "hash", w.hash, "err", err)
	}
	w.rev = 0
}
