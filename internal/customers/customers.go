// Package customers finds the Jira account of a request's requester: the
// JSM customer of the e-mail the form carries, created (and added to the
// service desk) on a first request. Jira Cloud takes accountIds only where
// a person is named (raiseOnBehalfOf, reporter), and a person who never used
// the portal is nobody's customer yet.
//
// Accounts are cached by e-mail in KV FORMS_CUSTOMERS, shared by replicas
// and restarts. Two replicas meeting the same new requester both find
// nobody and both create: Jira refuses the second create (409, the e-mail
// exists), which then looks the account up again, so there is one customer.
package customers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/cowjacket/formjira/internal/jira"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/ticket"
)

// ErrNoAccount: the requester has no account the bot may see, and the bot
// may not create one. The error says which permission is missing.
var ErrNoAccount = ticket.ErrNoAccount

// Jira is what the resolver needs (*jira.Client has it).
type Jira interface {
	FindAccount(ctx context.Context, desk, email string) (id string, inDesk bool, err error)
	CreateCustomer(ctx context.Context, email, name string) (string, error)
	AddCustomer(ctx context.Context, desk, accountID string) error
}

// Cache keeps e-mail → account (stream.Customers has it).
type Cache interface {
	Get(ctx context.Context, email string) (stream.Customer, bool, error)
	Put(ctx context.Context, c stream.Customer) error
}

var (
	_ Jira  = (*jira.Client)(nil)
	_ Cache = stream.Customers{}
)

// Resolver finds accounts for one service desk.
type Resolver struct {
	jira  Jira
	cache Cache
	desk  string
	log   *slog.Logger

	mu   sync.Mutex
	memo map[string]stream.Customer // by e-mail (lower case), this process
	// warned: the bot could not add a customer to the desk (logged once).
	warned bool
	// failedAt: when Jira last refused or failed an add to the desk. The
	// permission is the bot's, not the account's, so accounts left off
	// the desk are tried again only a minute after that (at once in a new
	// process, such as a replay).
	failedAt time.Time
}

// deskRetry is how long after a failed add to the desk none is retried.
const deskRetry = time.Minute

// New is a resolver for service desk desk ("" when there is none: then
// accounts are only found and created, never added to a desk). cache may be
// nil (a one-off command before the service made the bucket): accounts are
// then remembered for the process only.
func New(j Jira, cache Cache, desk string, log *slog.Logger) *Resolver {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Resolver{jira: j, cache: cache, desk: desk, log: log, memo: map[string]stream.Customer{}}
}

// AccountID is the account of p's e-mail, found or created. A Jira or NATS
// failure is returned as it is (retryable or not, as jira classifies it);
// ErrNoAccount when Jira lets the bot neither find nor create one.
func (r *Resolver) AccountID(ctx context.Context, p ticket.Person) (string, error) {
	email := normal(p.Email)
	if c, ok := r.known(ctx, email); ok {
		if c.OffDesk && r.deskRetryDue() {
			r.retryDesk(ctx, c)
		}
		return c.AccountID, nil
	}
	c, err := r.findOrCreate(ctx, email, p.Name)
	if err != nil {
		return "", err
	}
	r.store(ctx, c)
	return c.AccountID, nil
}

// OnDesk asks Jira whether p's account is a customer of the desk (true when
// there is no desk: nothing to be a customer of). One that is not is
// remembered as off the desk, so the next request tries to add it (an
// entry cached before off_desk existed does not say).
func (r *Resolver) OnDesk(ctx context.Context, p ticket.Person) (bool, error) {
	if r.desk == "" {
		return true, nil
	}
	email := normal(p.Email)
	id, inDesk, err := r.jira.FindAccount(ctx, r.desk, email)
	if err != nil {
		return false, fmt.Errorf("is %s a customer of service desk %s: %w", email, r.desk, err)
	}
	if c, ok := r.known(ctx, email); ok && !inDesk && !c.OffDesk && c.AccountID == id {
		c.OffDesk = true
		r.store(ctx, c)
	}
	return inDesk, nil
}

func normal(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// known is the account remembered by this process, else cached.
func (r *Resolver) known(ctx context.Context, email string) (stream.Customer, bool) {
	r.mu.Lock()
	c, ok := r.memo[email]
	r.mu.Unlock()
	if ok || r.cache == nil {
		return c, ok
	}
	c, ok, err := r.cache.Get(ctx, email)
	if err != nil || !ok {
		return stream.Customer{}, false
	}
	c.Email = email
	r.remember(c)
	return c, true
}

func (r *Resolver) store(ctx context.Context, c stream.Customer) {
	if r.cache != nil {
		if err := r.cache.Put(ctx, c); err != nil {
			r.log.Warn("customer account not cached; found again next time", "err", err)
		}
	}
	r.remember(c)
}

func (r *Resolver) remember(c stream.Customer) {
	r.mu.Lock()
	r.memo[c.Email] = c
	r.mu.Unlock()
}

func (r *Resolver) deskRetryDue() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return time.Since(r.failedAt) >= deskRetry
}

// retryDesk tries again to add an account Jira would not add before (the
// bot may have been made an administrator since). A failure leaves it as
// it was: the account is still the requester's.
func (r *Resolver) retryDesk(ctx context.Context, c stream.Customer) {
	added, err := r.addToDesk(ctx, c.AccountID, c.Email)
	if err != nil {
		r.log.Debug("adding a customer to the service desk failed; tried again later", "email", c.Email, "err", err)
		return
	}
	if added {
		c.OffDesk, c.At = false, time.Now().UTC()
		r.store(ctx, c)
	}
}

func (r *Resolver) findOrCreate(ctx context.Context, email, name string) (stream.Customer, error) {
	c := stream.Customer{Email: email}
	id, inDesk, err := r.jira.FindAccount(ctx, r.desk, email)
	if err != nil {
		return c, fmt.Errorf("find the account of %s: %w", email, err)
	}
	if id == "" {
		id, err = r.jira.CreateCustomer(ctx, email, name)
		switch {
		case errors.Is(err, jira.ErrExists):
			// Created meanwhile (another replica), or an account the
			// customer list did not show: look again.
			if id, inDesk, err = r.jira.FindAccount(ctx, r.desk, email); err != nil {
				return c, fmt.Errorf("find the account of %s: %w", email, err)
			}
			if id == "" {
				return c, fmt.Errorf("%w %s: Jira says the e-mail has an account, but neither the customers of service desk %s nor user search show it "+
					"(the account's e-mail may be hidden; grant the bot Browse users and groups, or add the person as a customer of the desk)", ErrNoAccount, email, r.desk)
			}
		case errors.Is(err, jira.ErrPermission):
			return c, fmt.Errorf("%w %s, and Jira refuses to create the customer: %w", ErrNoAccount, email, err)
		case err != nil:
			return c, fmt.Errorf("create the customer %s: %w", email, err)
		default:
			c.Created = true
			r.log.Info("JSM customer created for a first-time requester", "email", email)
		}
	}
	c.AccountID, c.At = id, time.Now().UTC()
	if r.desk != "" && !inDesk {
		added, err := r.addToDesk(ctx, id, email)
		if err != nil {
			return c, err
		}
		c.OffDesk = !added
	}
	return c, nil
}

// addToDesk makes the account a customer of the desk, which a desk open to
// everyone does not need and one restricted to its customers does; Jira
// tells neither, so a refusal of the permission is only logged (once) and
// reported as not added: the request create then says whether it mattered.
// Other failures are the caller's to retry, before the account is cached.
func (r *Resolver) addToDesk(ctx context.Context, id, email string) (added bool, err error) {
	err = r.jira.AddCustomer(ctx, r.desk, id)
	if err == nil {
		return true, nil
	}
	r.mu.Lock()
	r.failedAt = time.Now()
	first := !r.warned && errors.Is(err, jira.ErrPermission)
	r.warned = r.warned || first
	r.mu.Unlock()
	if !errors.Is(err, jira.ErrPermission) {
		return false, fmt.Errorf("add %s to the customers of service desk %s: %w", email, r.desk, err)
	}
	if first {
		r.log.Warn("the bot may not add customers to the service desk; fine if the desk is open to all", "email", email, "desk", r.desk, "err", err)
	}
	return false, nil
}
