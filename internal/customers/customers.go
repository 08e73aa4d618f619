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
	memo map[string]string // e-mail (lower case) → accountId, this process
	// warned: the bot could not add a customer to the desk (logged once).
	warned bool
}

// New is a resolver for service desk desk ("" when there is none: then
// accounts are only found and created, never added to a desk). cache may be
// nil (a one-off command before the service made the bucket): accounts are
// then remembered for the process only.
func New(j Jira, cache Cache, desk string, log *slog.Logger) *Resolver {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Resolver{jira: j, cache: cache, desk: desk, log: log, memo: map[string]string{}}
}

// AccountID is the account of p's e-mail, found or created. A Jira or NATS
// failure is returned as it is (retryable or not, as jira classifies it);
// ErrNoAccount when Jira lets the bot neither find nor create one.
func (r *Resolver) AccountID(ctx context.Context, p ticket.Person) (string, error) {
	email := strings.ToLower(strings.TrimSpace(p.Email))
	r.mu.Lock()
	id := r.memo[email]
	r.mu.Unlock()
	if id != "" {
		return id, nil
	}
	if r.cache != nil {
		if c, ok, err := r.cache.Get(ctx, email); err == nil && ok {
			r.remember(email, c.AccountID)
			return c.AccountID, nil
		}
	}
	id, created, err := r.findOrCreate(ctx, email, p.Name)
	if err != nil {
		return "", err
	}
	if r.cache != nil {
		if err := r.cache.Put(ctx, stream.Customer{Email: email, AccountID: id, Created: created, At: time.Now().UTC()}); err != nil {
			r.log.Warn("customer account not cached; found again next time", "err", err)
		}
	}
	r.remember(email, id)
	return id, nil
}

func (r *Resolver) remember(email, id string) {
	r.mu.Lock()
	r.memo[email] = id
	r.mu.Unlock()
}

func (r *Resolver) findOrCreate(ctx context.Context, email, name string) (id string, created bool, err error) {
	id, inDesk, err := r.jira.FindAccount(ctx, r.desk, email)
	if err != nil {
		return "", false, fmt.Errorf("find the account of %s: %w", email, err)
	}
	if id == "" {
		id, err = r.jira.CreateCustomer(ctx, email, name)
		switch {
		case errors.Is(err, jira.ErrExists):
			// Created meanwhile (another replica), or an account the
			// customer list did not show: look again.
			if id, inDesk, err = r.jira.FindAccount(ctx, r.desk, email); err != nil {
				return "", false, fmt.Errorf("find the account of %s: %w", email, err)
			}
			if id == "" {
				return "", false, fmt.Errorf("%w %s: Jira says the e-mail has an account, but neither the customers of service desk %s nor user search show it "+
					"(the account's e-mail may be hidden; grant the bot Browse users and groups, or add the person as a customer of the desk)", ErrNoAccount, email, r.desk)
			}
		case errors.Is(err, jira.ErrPermission):
			return "", false, fmt.Errorf("%w %s, and Jira refuses to create the customer: %w", ErrNoAccount, email, err)
		case err != nil:
			return "", false, fmt.Errorf("create the customer %s: %w", email, err)
		default:
			created = true
			r.log.Info("JSM customer created for a first-time requester", "email", email)
		}
	}
	if r.desk != "" && !inDesk {
		if err := r.addToDesk(ctx, id, email); err != nil {
			return "", false, err
		}
	}
	return id, created, nil
}

// addToDesk makes the account a customer of the desk, which a desk open to
// everyone does not need and one restricted to its customers does; Jira
// tells neither, so a refusal of the permission is only logged (once): the
// request create then says whether it mattered. Other failures are the
// caller's to retry, before the account is cached.
func (r *Resolver) addToDesk(ctx context.Context, id, email string) error {
	err := r.jira.AddCustomer(ctx, r.desk, id)
	if err == nil {
		return nil
	}
	if !errors.Is(err, jira.ErrPermission) {
		return fmt.Errorf("add %s to the customers of service desk %s: %w", email, r.desk, err)
	}
	r.mu.Lock()
	first := !r.warned
	r.warned = true
	r.mu.Unlock()
	if first {
		r.log.Warn("the bot may not add customers to the service desk; fine if the desk is open to all", "email", email, "desk", r.desk, "err", err)
	}
	return nil
}
