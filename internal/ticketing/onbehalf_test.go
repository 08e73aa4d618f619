package ticketing

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cowjacket/formjira/internal/jira"
	"github.com/cowjacket/formjira/internal/mapping"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/ticket"
	"github.com/cowjacket/formjira/internal/ticketing/ticketingtest"
	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

// desk is the requesters as the resolver sees them: each e-mail's account
// is "acct:" + e-mail; onDesk says who is a customer of the desk; noAccount
// who has none (raised as the bot, with unknown_requester: raise_as_bot).
type desk struct {
	mu        sync.Mutex
	onDesk    map[string]bool
	noAccount map[string]bool
	err       error // OnDesk fails
	asked     int
}

func (d *desk) AccountID(_ context.Context, p ticket.Person) (string, error) {
	if d.noAccount[p.Email] {
		return "", ticket.ErrNoAccount
	}
	return "acct:" + p.Email, nil
}

func (d *desk) OnDesk(_ context.Context, p ticket.Person) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.asked++
	return d.onDesk[p.Email], d.err
}

// TestOnBehalfRefusals: JSM answers 403 to a request raised for a
// customer. It is the requester's refusal (dead-lettered as
// jira_permission, its claim freed, nothing stopped) only when Jira says
// the bot may raise requests for customers and the requester is not one
// of the desk's; the bot's (consuming stops) when Jira says otherwise or a
// request raised as the bot was refused too; retried when Jira cannot be
// asked.
func TestOnBehalfRefusals(t *testing.T) {
	mayRaise := func(may bool) func(*ticket.Meta) (*ticket.Meta, error) {
		return func(m *ticket.Meta) (*ticket.Meta, error) { c := *m; c.CanRaiseOnBehalfOf = may; return &c, nil }
	}
	unavailable := &jira.APIError{Op: jira.OpRequestTypeField, Status: http.StatusServiceUnavailable}
	for _, tc := range []struct {
		name      string
		meta      func(*ticket.Meta) (*ticket.Meta, error) // the probe's answer
		onDesk    bool                                     // the refused requester is a customer of the desk
		deskErr   error                                    // reading the desk's customers fails
		refuseBot bool                                     // a request raised as the bot is refused too
		want      Status
	}{
		{"may raise, not a customer", mayRaise(true), false, nil, false, StatusDeadLettered},
		{"may raise, a customer of the desk", mayRaise(true), true, nil, false, StatusAuth},
		{"may not raise", mayRaise(false), false, nil, false, StatusAuth},
		{"a request as the bot refused too", mayRaise(true), false, nil, true, StatusAuth},
		{"the probe fails", func(*ticket.Meta) (*ticket.Meta, error) { return nil, unavailable }, false, nil, false, StatusRetry},
		{"the probe is refused", func(*ticket.Meta) (*ticket.Meta, error) {
			return nil, &jira.APIError{Op: jira.OpRequestTypeField, Status: http.StatusForbidden}
		}, false, nil, false, StatusAuth},
		{"the desk's customers cannot be read", mayRaise(true), false, unavailable, false, StatusRetry},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs := events(t, 2)
			refused, bot := requesterEmail(t, evs[0]), requesterEmail(t, evs[1])
			d := &desk{onDesk: map[string]bool{refused: tc.onDesk}, noAccount: map[string]bool{bot: true}, err: tc.deskErr}
			f := newFixture(t, func(c *Config) {
				useJSMAsBot(t, c)
				c.Requesters = d
				meta := c.Jira.(*ticketingtest.Jira).MetaFunc
				fresh := 0
				c.Jira.(*ticketingtest.Jira).MetaFunc = func(ctx context.Context, tg ticket.Target) (*ticket.Meta, error) {
					m, err := meta(ctx, tg)
					if fresh++; fresh == 1 || err != nil {
						return m, err // the engine's first look, for the mapping
					}
					return tc.meta(m)
				}
			})
			f.jira.CreateFunc = func(_ context.Context, req *ticket.Request) (string, error) {
				if req.RaiseOnBehalfOf == "acct:"+refused || tc.refuseBot && req.RaiseOnBehalfOf == "" {
					return "", &jira.APIError{Op: jira.OpRequestCreate, Status: http.StatusForbidden, Messages: []string{"not a customer"}}
				}
				return f.jira.NextKey(), nil
			}
			outs := f.process(items(t, evs...)...)
			if outs[0].Status != tc.want {
				t.Fatalf("the refused request: %v (%v), want %v", outs[0].Status, outs[0].Err, tc.want)
			}
			rec := f.records.Record(evs[0].GetHash())
			switch tc.want {
			case StatusDeadLettered:
				dl := f.dlq.DeadLetters()
				if len(dl) != 1 || dl[0].Reason != stream.ReasonPermission || !strings.Contains(dl[0].Error, refused) ||
					!strings.Contains(dl[0].Error, "not a customer of service desk 4") || len(dl[0].FieldErrors) != 1 {
					t.Errorf("dead letters %+v; want one jira_permission naming %s as no customer of the desk", dl, refused)
				}
				if rec != nil {
					t.Errorf("claim %+v left behind; want it freed (nothing was created)", rec)
				}
			default:
				if n := len(f.dlq.Msgs); n != 0 {
					t.Errorf("%d dead letters, want none", n)
				}
			}
			if !tc.refuseBot && outs[1].Status != StatusCreated {
				t.Errorf("the request raised as the bot: %v, want created", outs[1].Status)
			}
		})
	}
}

// useJSMAsBot is useJSM with unknown_requester: raise_as_bot.
func useJSMAsBot(t *testing.T, c *Config) {
	t.Helper()
	useJSM(t, c)
	b, err := os.ReadFile("../../deploy/mapping-jsm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "mapping.yaml")
	if err := os.WriteFile(file, append(b, "\nunknown_requester: raise_as_bot\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	if c.Mapping, err = mapping.Load(file); err != nil {
		t.Fatal(err)
	}
}

// requesterEmail is the event's e-mail column: its requester.
func requesterEmail(t *testing.T, ev *formsv1.FormSubmission) string {
	t.Helper()
	for _, c := range ev.GetColumns() {
		if c.GetName() == "emailaddress" && c.GetValue().GetText() != "" {
			return c.GetValue().GetText()
		}
	}
	t.Fatal("the event has no e-mail address")
	return ""
}
