package ticketing

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/cowjacket/formjira/internal/jira"
	"github.com/cowjacket/formjira/internal/stream"
)

// JSM answers 403 both to a bot that lacks a permission and to a request
// raised for someone the desk does not take (not its customer, on a desk
// restricted to its customers): "the user does not have permission to
// complete this request"
// (https://developer.atlassian.com/cloud/jira/service-desk/rest/api-group-request/#api-rest-servicedeskapi-request-post).
// The first must stop consuming (nothing would succeed); the second is
// the event's own and must not stop the others. Only what Jira says
// settles it as the requester's: the bot may raise requests for customers
// (the request type's canRaiseOnBehalfOf, read afresh), and the requester
// is not a customer of the desk (its customer list, read afresh).

// onBehalfRefused: a create raised on a customer's behalf was answered 403.
func onBehalfRefused(w *work, err error) bool {
	return w.req.RaiseOnBehalfOf != "" && w.req.Requester != nil && errors.Is(err, jira.ErrPermission)
}

// botRefused: a request raised as the bot itself was refused, which no
// requester explains.
func botRefused(results []result) bool {
	return slices.ContainsFunc(results, func(r result) bool { return Refused(r.err) && r.w.req.RaiseOnBehalfOf == "" })
}

// mayRaiseForCustomers asks Jira afresh for the request type's
// canRaiseOnBehalfOf (not the cached view).
// https://developer.atlassian.com/cloud/jira/service-desk/rest/api-group-servicedesk/#api-rest-servicedeskapi-servicedesk-servicedeskid-requesttype-requesttypeid-field-get
func (p *Engine) mayRaiseForCustomers(ctx context.Context) (bool, error) {
	m, err := p.cfg.Jira.Meta(ctx, p.cfg.Mapping.Target())
	if err != nil {
		return false, err
	}
	return m.CanRaiseOnBehalfOf, nil
}

// requestersRefusal settles w's 403 when it is not the bot's: dead-lettered
// as the requester's (nothing was created, so its claim is freed), or
// retried when Jira could not be asked. false leaves it to the bot's
// refusal: consuming stops. mayRaise is mayRaiseForCustomers, once a round.
func (p *Engine) requestersRefusal(ctx context.Context, w *work, err error, mayRaise func() (bool, error)) bool {
	may, perr := mayRaise()
	onDesk := false
	if perr == nil && may {
		onDesk, perr = p.cfg.Requesters.OnDesk(ctx, *w.req.Requester)
	}
	switch {
	case perr != nil && !Refused(perr):
		w.notCreated = true
		p.transient(w, fmt.Errorf("%w; and whether it refuses the requester or the bot cannot be told now: %w", err, perr), jira.RetryAfter(perr))
		return true
	case perr != nil || !may || onDesk:
		return false // the bot's refusal (a customer of the desk is not refused as one)
	}
	p.freeOwnClaim(ctx, w)
	dl := notACustomer(w, err)
	p.deadLetter(ctx, w, stream.ReasonPermission, dl, []string{"raiseOnBehalfOf (" + w.req.Requester.Email + "): " + dl.Error()})
	return true
}

// notACustomer explains a requester refused while the bot may raise
// requests for customers: what an operator fixes before the replay.
func notACustomer(w *work, err error) error {
	return fmt.Errorf("Jira refuses to raise this request on behalf of %s (account %s), who is not a customer of service desk %s, "+
		"though the bot may raise requests for customers: the desk takes requests only from its customers. Add them as a customer of the desk "+
		"(or make the bot a service desk administrator, so it adds first-time requesters itself), then replay it (ticketer dlq replay): %s",
		w.req.Requester.Email, w.req.RaiseOnBehalfOf, w.req.ServiceDeskID, jira.Said(err))
}
