// Package jirasandbox is a strict, small stand-in for the Jira Cloud (and
// Jira Service Management) endpoints the ticketer calls. It validates
// against the embedded fixtures of project CP, answers in Jira's shapes so
// the real go-atlassian client works against it, and can be switched,
// per test, to each behaviour of Jira Cloud a production client must
// survive: per-endpoint rate limits and their header variants, 5xx, an
// issue created behind a 500, latency, a lagging search index, shuffled
// bulk answers, JSM's customer rules, missing permissions, anonymous
// fallback, createmeta's page shapes and outages.
//
// The work is split by concern: catalog (fixtures, validation, createmeta
// pages), issues (the issue store and its endpoints), accounts (the bot
// and JSM customers), jql, ratelimit and wire (shared wire conventions);
// this package wires them, applies what happens before an endpoint runs,
// and holds the switches.
package jirasandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/cowjacket/formjira/internal/jirasandbox/accounts"
	"github.com/cowjacket/formjira/internal/jirasandbox/catalog"
	"github.com/cowjacket/formjira/internal/jirasandbox/issues"
	"github.com/cowjacket/formjira/internal/jirasandbox/ratelimit"
	"github.com/cowjacket/formjira/internal/jirasandbox/wire"
)

// Server is the sandbox; it implements http.Handler.
type Server struct {
	cat *catalog.Catalog
	dir *accounts.Directory
	iss *issues.Service
	lim *ratelimit.Limiter
	log *slog.Logger
	mux *http.ServeMux
	api *http.ServeMux
	// anon are the routes Jira documents as "This operation can be accessed
	// anonymously" (platform intro, "Anonymous operations",
	// https://developer.atlassian.com/cloud/jira/platform/rest/v3/intro/).
	anon map[string]bool

	mu          sync.Mutex
	opts        Options // live configuration, changed by the setters
	rng         *rand.Rand
	authFailure int
	requests    []Request
	added       []addedOption // AddOption calls, for StateFile

	saveMu sync.Mutex // orders StateFile writes
}

// New builds a sandbox. It panics only if the embedded fixtures are broken,
// which the package's tests rule out.
func New(opts Options) *Server {
	cat, err := loadCatalog()
	if err != nil {
		panic(fmt.Sprintf("jirasandbox: %v", err))
	}
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = "CP"
	}
	if opts.StartKey <= 0 {
		opts.StartKey = 1
	}
	s := &Server{
		cat:  cat,
		log:  opts.Logger,
		opts: opts,
		rng:  rand.New(rand.NewPCG(uint64(opts.Seed), 0x6a697261)),
		lim:  ratelimit.New(),
		anon: map[string]bool{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	bot := accounts.Account{AccountID: accounts.BotAccountID, Email: botEmail(opts.Email), DisplayName: "Jira Sandbox"}
	s.dir = accounts.New(bot, accounts.Desk{ID: catalog.ServiceDeskID, ProjectKey: cat.ProjectKey(), ProjectID: cat.ProjectID()},
		opts.Customers, s.saveState)
	s.iss = issues.New(issues.Config{
		Catalog: cat, Accounts: s.dir, Logger: s.log, KeyPrefix: opts.KeyPrefix, StartKey: opts.StartKey,
		Policy: s.issuePolicy, Faults: faults{s}, Changed: s.saveState,
	})
	s.apply(Options{}, opts, true)
	if opts.StateFile != "" {
		if err := s.loadState(); err != nil {
			// A sandbox is disposable: say so and start afresh rather than fail.
			s.log.Warn("jira sandbox starts without saved state", "err", err)
			s.iss.Restore(opts.StartKey, nil)
			s.added = nil
		}
	}
	s.routes()
	return s
}

func botEmail(email string) string {
	if email == "" {
		return "sandbox@example.com"
	}
	return email
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) routes() {
	s.api = http.NewServeMux()
	handle := func(pattern string, h http.HandlerFunc, anonymous bool) {
		s.api.HandleFunc(pattern, h)
		s.anon[pattern] = anonymous
	}
	for _, v := range []string{"2", "3"} {
		p := "/rest/api/" + v
		handle("POST "+p+"/issue", s.iss.HandleCreate, false)
		handle("POST "+p+"/issue/bulk", s.iss.HandleBulk, false)
		handle("POST "+p+"/issue/bulkfetch", s.iss.HandleBulkFetch, true)
		handle("GET "+p+"/issue/{key}", s.iss.HandleGet, true)
		handle("PUT "+p+"/issue/{key}", s.iss.HandleEdit, false)
		handle("GET "+p+"/issue/createmeta/{project}/issuetypes", s.handleIssueTypes, true)
		handle("GET "+p+"/issue/createmeta/{project}/issuetypes/{id}", s.handleCreateMeta, true)
		handle("GET "+p+"/field", s.handleFields, false)
		handle("GET "+p+"/search/jql", s.iss.HandleSearch, true)
		handle("POST "+p+"/search/jql", s.iss.HandleSearch, true)
		handle("GET "+p+"/search", s.iss.HandleLegacySearch, true)
		handle("POST "+p+"/search", s.iss.HandleLegacySearch, true)
		handle("GET "+p+"/myself", s.handleMyself, false)
		handle("GET "+p+"/serverInfo", s.handleServerInfo, true)
		handle("GET "+p+"/user/search", s.dir.HandleUserSearch, true)
		handle("GET "+p+"/user", s.dir.HandleUser, false)
	}
	handle("POST /rest/servicedeskapi/request", s.iss.HandleCreateRequest, false)
	handle("GET /rest/servicedeskapi/servicedesk/{desk}/requesttype/{type}/field", s.handleRequestTypeFields, false)
	handle("GET /rest/servicedeskapi/servicedesk/{desk}/customer", s.dir.HandleListCustomers, false)
	handle("POST /rest/servicedeskapi/servicedesk/{desk}/customer", s.dir.HandleAddCustomers, false)
	handle("POST /rest/servicedeskapi/customer", s.dir.HandleCreateCustomer, false)
	handle("/", func(w http.ResponseWriter, r *http.Request) {
		if wire.IsJSM(r) {
			wire.JSMError(w, http.StatusNotFound, "null for uri: "+r.URL.Path, "sd.error.not.found", nil)
			return
		}
		wire.Errors(w, http.StatusNotFound, []string{"null for uri: " + r.URL.Path}, nil)
	}, false)

	s.mux = http.NewServeMux()
	s.mux.Handle("/rest/", s.apiMiddleware(s.api))
	s.mux.HandleFunc("GET /{$}", s.handlePage)
	s.mux.HandleFunc("GET /sandbox/{$}", s.handlePage)
	s.mux.HandleFunc("GET /sandbox/issues", s.handleIssuesJSON)
	s.mux.HandleFunc("GET /sandbox/customers", s.handleCustomersJSON)
	s.mux.HandleFunc("POST /sandbox/customers", s.handleAddCustomer)
	s.mux.HandleFunc("POST /sandbox/options", s.handleAddOption)
	s.mux.HandleFunc("GET /sandbox/config", s.handleConfig)
	s.mux.HandleFunc("POST /sandbox/config", s.handleConfig)
	s.mux.HandleFunc("POST /sandbox/reset", s.handleReset)
}

// issuePolicy is the issue endpoints' view of the options.
func (s *Server) issuePolicy() issues.Policy {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.opts
	return issues.Policy{
		SearchDelay: o.SearchDelay, ShuffleBulk: o.ShuffleBulk, DenyCreate: o.DenyCreate, BulkFetchErrors: o.BulkFetchErrors, DataCenter: o.DataCenter,
		StrictCustomers: o.StrictCustomers, DeskAccess: o.DeskAccess,
		RestrictedAddsCustomer: o.RestrictedAddsCustomer, NotCustomerStatus: o.NotCustomerStatus,
		RequestTypeForm: o.RequestTypeForm, JSMErrorsByName: o.JSMErrorsByName,
	}
}

// faults are the server's seeded dice, for the issue endpoints.
type faults struct{ s *Server }

func (f faults) CreatedBut500() bool {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	return f.s.opts.CreatedBut500Rate > 0 && f.s.rng.Float64() < f.s.opts.CreatedBut500Rate
}

func (f faults) RejectBulk() bool {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	if f.s.opts.BulkReject400Count > 0 {
		f.s.opts.BulkReject400Count--
		return true
	}
	return f.s.opts.BulkReject400Rate > 0 && f.s.rng.Float64() < f.s.opts.BulkReject400Rate
}

func (f faults) Shuffle(n int, swap func(i, j int)) {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	f.s.rng.Shuffle(n, swap)
}

// AddOption adds value to the allowed values of a select, radio or checkbox
// field, in createmeta and in the JSM request type alike: what an operator
// does in Jira before replaying a dead-lettered submission.
func (s *Server) AddOption(fieldID, value string) error {
	if err := s.cat.AddOption(fieldID, value); err != nil {
		return err
	}
	s.mu.Lock()
	o := addedOption{FieldID: fieldID, Value: value}
	fresh := !slices.Contains(s.added, o)
	if fresh {
		s.added = append(s.added, o)
	}
	s.mu.Unlock()
	if fresh {
		s.saveState()
	}
	return nil
}

// AddCustomer creates a customer account (on no service desk) and
// returns its accountId; an account with that e-mail (any case) is
// returned as it is.
func (s *Server) AddCustomer(email, displayName string) string {
	a, _ := s.dir.Add(email, displayName)
	return a.AccountID
}

// AddToServiceDesk makes the accounts customers of desk 4, as POST
// /rest/servicedeskapi/servicedesk/4/customer does.
func (s *Server) AddToServiceDesk(accountIDs ...string) error {
	if unknown := s.dir.AddToDesk(catalog.ServiceDeskID, accountIDs...); len(unknown) > 0 {
		return fmt.Errorf("no such accounts: %v", unknown)
	}
	return nil
}

// Customers returns every account of the site, the bot first, with its
// e-mail, name, accountId and service desks.
func (s *Server) Customers() []Account { return s.dir.All() }

// Issues returns the created issues, oldest first.
func (s *Server) Issues() []Issue { return s.iss.List() }

// IssueByLabel returns the issues carrying label, oldest first, whether or
// not search can see them yet.
func (s *Server) IssueByLabel(label string) []Issue { return s.iss.ByLabel(label) }

// Requests returns the API requests received, in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// CountStatus counts the API requests answered status (429, say; 0 counts
// dropped connections).
func (s *Server) CountStatus(status int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if r.Status == status {
			n++
		}
	}
	return n
}

// Reset forgets issues and requests; issue numbering continues, as Jira's
// does after issues are deleted. Accounts are kept.
func (s *Server) Reset() {
	s.mu.Lock()
	s.requests = nil
	s.mu.Unlock()
	s.iss.Forget()
}

// ListenAndServe serves the sandbox on addr until ctx ends, then shuts down
// gracefully. ready, if not nil, is called with the base URL once the
// listener is bound (use 127.0.0.1:0 for a free port).
func (s *Server) ListenAndServe(ctx context.Context, addr string, ready func(baseURL string)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("jira sandbox listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	if ready != nil {
		ready("http://" + ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("jira sandbox serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("jira sandbox shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("jira sandbox serve: %w", err)
	}
	return nil
}
