package customers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/cowjacket/formjira/internal/jira"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/ticket"
)

// directory is a Jira's accounts as the resolver sees them: e-mails unique
// ignoring case, a 409 for a second create, desk membership.
type directory struct {
	mu       sync.Mutex
	accounts map[string]string // lower e-mail → id
	inDesk   map[string]bool
	forbid   bool // the bot may not create customers
	// forbidAdd: the bot may not add customers to the desk; failAdd:
	// Jira fails the add (a 503).
	forbidAdd, failAdd bool
	calls              map[string]int
	// between is called between a failed find and the create: a test's
	// chance to let another replica win the race.
	between func()
}

func newDirectory() *directory {
	return &directory{accounts: map[string]string{}, inDesk: map[string]bool{}, calls: map[string]int{}}
}

func (d *directory) FindAccount(_ context.Context, desk, email string) (string, bool, error) {
	d.mu.Lock()
	d.calls["find"]++
	id := d.accounts[strings.ToLower(email)]
	in := d.inDesk[id]
	between := d.between
	d.mu.Unlock()
	if id == "" && between != nil {
		between()
	}
	return id, in, nil
}

func (d *directory) CreateCustomer(_ context.Context, email, _ string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls["create"]++
	if d.forbid {
		return "", &jira.APIError{Op: jira.OpCustomerCreate, Status: http.StatusForbidden}
	}
	if _, ok := d.accounts[strings.ToLower(email)]; ok {
		return "", &jira.APIError{Op: jira.OpCustomerCreate, Status: http.StatusConflict}
	}
	id := fmt.Sprintf("qm:%d", len(d.accounts)+1)
	d.accounts[strings.ToLower(email)] = id
	return id, nil
}

func (d *directory) AddCustomer(_ context.Context, _, id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls["add"]++
	if d.forbidAdd {
		return &jira.APIError{Op: jira.OpCustomerAdd, Status: http.StatusForbidden}
	}
	if d.failAdd {
		return &jira.APIError{Op: jira.OpCustomerAdd, Status: http.StatusServiceUnavailable}
	}
	d.inDesk[id] = true
	return nil
}

func (d *directory) count(op string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls[op]
}

// memCache is FORMS_CUSTOMERS in memory.
type memCache struct {
	mu sync.Mutex
	m  map[string]stream.Customer
}

func (c *memCache) Get(_ context.Context, email string) (stream.Customer, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cu, ok := c.m[strings.ToLower(email)]
	return cu, ok, nil
}

func (c *memCache) Put(_ context.Context, cu stream.Customer) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[strings.ToLower(cu.Email)] = cu
	return nil
}

func TestFirstTimeReturningAndDifferentlyCased(t *testing.T) {
	dir, cache := newDirectory(), &memCache{m: map[string]stream.Customer{}}
	ctx := context.Background()
	r := New(dir, cache, "4", nil)
	id, err := r.AccountID(ctx, ticket.Person{Email: "Sara.Curtis@Example.com", Name: "Sara Curtis"})
	if err != nil || id == "" {
		t.Fatalf("first time: %q, %v", id, err)
	}
	if dir.count("create") != 1 || dir.count("add") != 1 || !dir.inDesk[id] {
		t.Errorf("first time: %v; want one create and the customer added to the desk", dir.calls)
	}
	if c, ok, _ := cache.Get(ctx, "sara.curtis@example.com"); !ok || c.AccountID != id || !c.Created {
		t.Errorf("cache %+v, %v", c, ok)
	}
	// Returning, in another case and in another process (a fresh resolver
	// sharing the cache): no Jira call at all.
	before := dir.count("find")
	r2 := New(dir, cache, "4", nil)
	for _, e := range []string{"sara.curtis@example.com", " SARA.CURTIS@EXAMPLE.COM "} {
		if got, err := r2.AccountID(ctx, ticket.Person{Email: e}); err != nil || got != id {
			t.Errorf("%q: %q, %v; want %q", e, got, err, id)
		}
	}
	if dir.count("find") != before || dir.count("create") != 1 {
		t.Errorf("returning requester cost Jira calls: %v", dir.calls)
	}
}

func TestExistingAccountIsFoundNotCreated(t *testing.T) {
	dir := newDirectory()
	dir.accounts["ann@example.com"] = "qm:ann"
	r := New(dir, &memCache{m: map[string]stream.Customer{}}, "4", nil)
	if id, err := r.AccountID(context.Background(), ticket.Person{Email: "ann@example.com"}); err != nil || id != "qm:ann" {
		t.Fatalf("%q, %v", id, err)
	}
	if dir.count("create") != 0 || dir.count("add") != 1 {
		t.Errorf("calls %v: want no create, one add (a user who is not yet the desk's customer)", dir.calls)
	}
}

// Two replicas meet the same new requester at once: both find nobody, both
// create; Jira refuses the second (409), which finds the first's account.
func TestRacingReplicasMakeOneCustomer(t *testing.T) {
	dir := newDirectory()
	var once sync.Once
	shared := &memCache{m: map[string]stream.Customer{}}
	r1, r2 := New(dir, shared, "4", nil), New(dir, shared, "4", nil)
	p := ticket.Person{Email: "new@example.com", Name: "New Person"}
	// r1's create happens between r2's empty find and r2's create.
	dir.between = func() {
		once.Do(func() {
			dir.between = nil
			if _, err := r1.AccountID(context.Background(), p); err != nil {
				t.Error(err)
			}
		})
	}
	id2, err := r2.AccountID(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	id1, _ := r1.AccountID(context.Background(), p)
	if id1 != id2 || len(dir.accounts) != 1 || dir.count("create") != 2 {
		t.Errorf("accounts %v, ids %q %q, calls %v: want one customer, two creates (one refused)", dir.accounts, id1, id2, dir.calls)
	}
}

func TestForbiddenCreateNamesThePermission(t *testing.T) {
	dir := newDirectory()
	dir.forbid = true
	r := New(dir, &memCache{m: map[string]stream.Customer{}}, "4", nil)
	_, err := r.AccountID(context.Background(), ticket.Person{Email: "x@example.com"})
	if !errors.Is(err, ErrNoAccount) || !errors.Is(err, jira.ErrPermission) || !strings.Contains(err.Error(), "Jira Administrators") {
		t.Errorf("err = %v; want ErrNoAccount naming the Jira Administrators permission", err)
	}
}

// TestOffDeskTriedAgain: an account Jira would not add to the desk is
// cached as off the desk and tried again, by a new process at once (a
// replay after the bot was made an administrator), by this one at most
// once a minute; once added, never again.
func TestOffDeskTriedAgain(t *testing.T) {
	dir, cache := newDirectory(), &memCache{m: map[string]stream.Customer{}}
	dir.forbidAdd = true
	ctx := context.Background()
	p := ticket.Person{Email: "new@example.com", Name: "New Person"}
	r := New(dir, cache, "4", nil)
	id, err := r.AccountID(ctx, p)
	if c, _, _ := cache.Get(ctx, p.Email); err != nil || id == "" || !c.OffDesk {
		t.Fatalf("first request: %q, %v, cached %+v; want an account cached as off the desk", id, err, c)
	}
	if _, err := r.AccountID(ctx, p); err != nil || dir.count("add") != 1 {
		t.Errorf("again within the minute: %v, %d adds; want no second add", err, dir.count("add"))
	}
	r.mu.Lock()
	r.failedAt = r.failedAt.Add(-deskRetry)
	r.mu.Unlock()
	if _, err := r.AccountID(ctx, p); err != nil || dir.count("add") != 2 {
		t.Errorf("a minute after the refusal: %v, %d adds; want the add tried again", err, dir.count("add"))
	}
	dir.mu.Lock()
	dir.forbidAdd = false
	dir.mu.Unlock()
	r2 := New(dir, cache, "4", nil)
	if got, err := r2.AccountID(ctx, p); err != nil || got != id || dir.count("add") != 3 || !dir.inDesk[id] {
		t.Errorf("a new process: %q, %v, %d adds, on desk %v; want the add tried again, and done", got, err, dir.count("add"), dir.inDesk[id])
	}
	if c, _, _ := cache.Get(ctx, p.Email); c.OffDesk {
		t.Errorf("cached %+v after the add; want on the desk", c)
	}
	if _, err := New(dir, cache, "4", nil).AccountID(ctx, p); err != nil || dir.count("add") != 3 || dir.count("create") != 1 {
		t.Errorf("after the add: %v, calls %v; want no further add or create", err, dir.calls)
	}
}

// TestOffDeskRetriesAreSpaced: while Jira fails the adds, an off-desk
// account costs one add a minute, however often its requester writes.
func TestOffDeskRetriesAreSpaced(t *testing.T) {
	dir, cache := newDirectory(), &memCache{m: map[string]stream.Customer{}}
	ctx := context.Background()
	cache.m["ann@example.com"] = stream.Customer{Email: "ann@example.com", AccountID: "qm:ann", OffDesk: true}
	dir.accounts["ann@example.com"] = "qm:ann"
	dir.failAdd = true
	r := New(dir, cache, "4", nil)
	for range 20 {
		if id, err := r.AccountID(ctx, ticket.Person{Email: "Ann@Example.com"}); err != nil || id != "qm:ann" {
			t.Fatalf("%q, %v; want the cached account whatever the add does", id, err)
		}
	}
	if n := dir.count("add"); n != 1 {
		t.Errorf("%d adds for 20 requests while Jira fails them, want 1", n)
	}
}

// TestOnDeskAsksJiraAndRemembersOffDesk: OnDesk reads the desk's customers
// afresh; an account cached before off_desk existed is marked off the
// desk, so the next request tries to add it.
func TestOnDeskAsksJiraAndRemembersOffDesk(t *testing.T) {
	dir, cache := newDirectory(), &memCache{m: map[string]stream.Customer{}}
	ctx := context.Background()
	cache.m["ann@example.com"] = stream.Customer{Email: "ann@example.com", AccountID: "qm:ann"}
	dir.accounts["ann@example.com"] = "qm:ann"
	r := New(dir, cache, "4", nil)
	p := ticket.Person{Email: " ANN@example.com"}
	if on, err := r.OnDesk(ctx, p); err != nil || on {
		t.Fatalf("OnDesk = %v, %v; want false", on, err)
	}
	if c, _, _ := cache.Get(ctx, "ann@example.com"); !c.OffDesk {
		t.Errorf("cached %+v; want it marked off the desk", c)
	}
	if _, err := r.AccountID(ctx, p); err != nil || dir.count("add") != 1 || !dir.inDesk["qm:ann"] {
		t.Errorf("next request: %v, %d adds; want the account added", err, dir.count("add"))
	}
	if on, err := r.OnDesk(ctx, p); err != nil || !on {
		t.Errorf("OnDesk after the add = %v, %v; want true", on, err)
	}
	if on, err := New(dir, cache, "", nil).OnDesk(ctx, p); err != nil || !on {
		t.Errorf("no desk: OnDesk = %v, %v; want true", on, err)
	}
}
