// Package accounts is the sandbox's user directory: the bot the ticketer
// authenticates as and the JSM customers it raises requests for, with the
// endpoints Jira Cloud and JSM offer to find, create and admit them
// (research notes §1).
package accounts

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Account types, as Jira's User bean reports them: the bot is a licensed
// Atlassian account, customers created through JSM are portal-only.
const (
	TypeAtlassian = "atlassian"
	TypeCustomer  = "customer"
)

// BotAccountID is the accountId of the account the sandbox's credentials
// belong to (GET /myself, X-AAccountId).
const BotAccountID = "5b10ac8d82e05b22cc7d4ef5"

// Account is one account of the site.
type Account struct {
	AccountID   string `json:"accountId"`
	Email       string `json:"email"`
	DisplayName string `json:"displayName"`
	// AccountType is TypeAtlassian (the bot) or TypeCustomer ("" on input
	// means TypeCustomer).
	AccountType string `json:"accountType"`
	// ServiceDesks are the ids of the service desks the account is a
	// customer of ("4" for CP's).
	ServiceDesks []string `json:"serviceDesks,omitempty"`
}

// OnDesk reports whether a is a customer of desk.
func (a Account) OnDesk(desk string) bool { return slices.Contains(a.ServiceDesks, desk) }

func (a *Account) clone() Account {
	c := *a
	c.ServiceDesks = slices.Clone(a.ServiceDesks)
	return c
}

// Policy is what the site's settings and the bot's permissions allow; the
// server sets it from its options.
type Policy struct {
	// ForbidCreate: the bot lacks the Jira Administrators global permission
	// that POST /rest/servicedeskapi/customer needs (403).
	ForbidCreate bool
	// ForbidAdd: the bot is no service desk administrator, which POST
	// /rest/servicedeskapi/servicedesk/{id}/customer needs (403).
	ForbidAdd bool
	// HideEmails: the users' profile visibility hides their e-mail from the
	// platform's user endpoints (user/search, user).
	HideEmails bool
	// HideCustomerEmails: JSM's customer list answers emailAddress null.
	HideCustomerEmails bool
	// OpenDesk: the desk's channel access is Open, so every customer
	// account is on its Customers list.
	OpenDesk bool
	// CustomerPageMax caps a customer-list page (default 50): a larger
	// limit is answered with fewer items and isLastPage false.
	CustomerPageMax int
}

// Desk identifies the one service desk and its project, for the JSM
// "project identifier" forms of {serviceDeskId}.
type Desk struct{ ID, ProjectKey, ProjectID string }

// Directory holds the accounts. Safe for concurrent use.
type Directory struct {
	desk    Desk
	changed func()

	mu       sync.Mutex
	accounts []*Account // bot first, then in creation order
	next     int        // customers created, for their ids
	policy   Policy
}

// New builds a directory holding bot and the pre-existing customers.
// changed, if not nil, is called (without locks held) after every change.
func New(bot Account, desk Desk, customers []Account, changed func()) *Directory {
	if changed == nil {
		changed = func() {}
	}
	bot.AccountType = TypeAtlassian
	d := &Directory{desk: desk, changed: changed, accounts: []*Account{&bot}}
	for _, c := range customers {
		d.insert(c)
	}
	return d
}

// insert adds a, generating its id when it has none. Callers hold d.mu
// or own d exclusively.
func (d *Directory) insert(a Account) *Account {
	d.next++
	if a.AccountID == "" {
		a.AccountID = customerID(d.next, a.Email)
	}
	if a.AccountType == "" {
		a.AccountType = TypeCustomer
	}
	a.ServiceDesks = slices.Clone(a.ServiceDesks)
	p := &a
	d.accounts = append(d.accounts, p)
	return p
}

// customerID makes a portal-only customer's accountId in the shape JSM
// gives them, "qm:<uuid>:<24 hex>", stable for one sequence of creates.
func customerID(n int, email string) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%d\x00%s", n, strings.ToLower(email)))
	h := hex.EncodeToString(sum[:])
	return "qm:" + h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-8" + h[17:20] + "-" + h[20:32] + ":" + h[32:56]
}

// SetPolicy replaces the policy.
func (d *Directory) SetPolicy(p Policy) {
	d.mu.Lock()
	d.policy = p
	d.mu.Unlock()
}

func (d *Directory) currentPolicy() Policy {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.policy
}

// SetBotEmail changes the bot's e-mail (the sandbox's Email option).
func (d *Directory) SetBotEmail(email string) {
	d.mu.Lock()
	d.accounts[0].Email = email
	d.mu.Unlock()
}

// Bot is the bot's account.
func (d *Directory) Bot() Account {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.accounts[0].clone()
}

func (d *Directory) byIDLocked(id string) *Account {
	for _, a := range d.accounts {
		if a.AccountID == id {
			return a
		}
	}
	return nil
}

func (d *Directory) byEmailLocked(email string) *Account {
	for _, a := range d.accounts {
		if a.Email != "" && strings.EqualFold(a.Email, email) {
			return a
		}
	}
	return nil
}

// Get finds an account by accountId.
func (d *Directory) Get(id string) (Account, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if a := d.byIDLocked(id); a != nil {
		return a.clone(), true
	}
	return Account{}, false
}

// ByEmail finds an account by e-mail, ignoring case as Jira does.
func (d *Directory) ByEmail(email string) (Account, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if a := d.byEmailLocked(email); a != nil {
		return a.clone(), true
	}
	return Account{}, false
}

// Add creates a customer account for email unless one exists (any case);
// created says which.
func (d *Directory) Add(email, displayName string) (a Account, created bool) {
	d.mu.Lock()
	if p := d.byEmailLocked(email); p != nil {
		out := p.clone() // under the lock: AddToDesk may be appending to its desks
		d.mu.Unlock()
		return out, false
	}
	p := d.insert(Account{Email: email, DisplayName: displayName})
	out := p.clone()
	d.mu.Unlock()
	d.changed()
	return out, true
}

// AddToDesk makes the accounts customers of desk (idempotent) and returns
// the ids that name no account; the others are added all the same.
func (d *Directory) AddToDesk(desk string, ids ...string) (unknown []string) {
	d.mu.Lock()
	changed := false
	for _, id := range ids {
		a := d.byIDLocked(id)
		if a == nil {
			unknown = append(unknown, id)
			continue
		}
		if !a.OnDesk(desk) {
			a.ServiceDesks = append(a.ServiceDesks, desk)
			changed = true
		}
	}
	d.mu.Unlock()
	if changed {
		d.changed()
	}
	return unknown
}

// All lists every account, the bot first.
func (d *Directory) All() []Account {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Account, len(d.accounts))
	for i, a := range d.accounts {
		out[i] = a.clone()
	}
	return out
}

// Snapshot is what a state file keeps: the accounts besides the bot and
// the id counter.
type Snapshot struct {
	Next      int       `json:"next"`
	Customers []Account `json:"customers,omitempty"`
}

// Snapshot returns the directory's persistent state.
func (d *Directory) Snapshot() Snapshot {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := Snapshot{Next: d.next}
	for _, a := range d.accounts[1:] {
		s.Customers = append(s.Customers, a.clone())
	}
	return s
}

// Restore adds the snapshot's accounts that are not already present (by
// accountId or e-mail) and advances the id counter past it.
func (d *Directory) Restore(s Snapshot) {
	d.mu.Lock()
	for _, a := range s.Customers {
		if d.byIDLocked(a.AccountID) == nil && d.byEmailLocked(a.Email) == nil {
			d.insert(a)
		}
	}
	d.next = max(d.next, s.Next)
	d.mu.Unlock()
}

// ResolveDesk accepts the forms JSM takes for {serviceDeskId}: "4",
// "serviceDeskId:4", the project key "CP", "projectKey:CP" and
// "projectId:10010" (JSM intro, "Using project identifiers",
// https://developer.atlassian.com/cloud/jira/service-desk/rest/intro/).
func (d *Directory) ResolveDesk(s string) (string, bool) {
	switch {
	case s == d.desk.ID, s == "serviceDeskId:"+d.desk.ID,
		strings.EqualFold(s, d.desk.ProjectKey), s == "projectKey:"+d.desk.ProjectKey,
		s == "projectId:"+d.desk.ProjectID:
		return d.desk.ID, true
	}
	return "", false
}
