// Package jirasandbox is a strict, small stand-in for the Jira Cloud (and
// Jira Service Management) endpoints the ticketer calls. It validates
// against the embedded fixtures of project CP, answers in Jira's shapes so
// the real go-atlassian client works against it, and can inject the
// failures a production client must survive: rate limiting, 5xx, an issue
// created behind a 500, latency, a lagging search index and auth failures.
package jirasandbox

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Options configure a Server. The zero value is a permissive sandbox: no
// auth, no rate limit, no faults.
type Options struct {
	// Email and APIToken are the Jira Cloud basic-auth credentials; when both
	// are empty (and PAT is empty) requests are not authenticated.
	Email, APIToken string
	// PAT, when set, is also accepted as "Authorization: Bearer <PAT>"
	// (Jira Data Center personal access tokens).
	PAT string

	// RatePerSecond and Burst pace the API; beyond them Jira answers 429.
	RatePerSecond float64
	Burst         int

	// Error5xxRate is the fraction of API requests answered 500, 502 or 503
	// before anything is done.
	Error5xxRate float64
	// CreatedBut500Rate is the fraction of creates that create and record
	// the issue yet answer 500: the "unknown outcome" case.
	CreatedBut500Rate float64
	// Latency is added to every API call.
	Latency time.Duration
	// SearchDelay is how long a created issue stays invisible to JQL
	// search: Jira's index is eventually consistent.
	SearchDelay time.Duration

	// Seed makes the injected faults reproducible.
	Seed int64
	// KeyPrefix is the issue key prefix (default "CP"); StartKey the first
	// issue number (default 1).
	KeyPrefix string
	StartKey  int

	// StateFile, when set, keeps issues, the key counter and added options
	// across restarts (the local demo); it is rewritten on every change.
	StateFile string

	// Logger receives one line per created issue and per injected fault;
	// nil discards.
	Logger *slog.Logger
}

// Issue is the sandbox's record of a created issue.
type Issue struct {
	Key string
	ID  string
	// Fields are the fields as received (JSM: the requestFieldValues).
	Fields map[string]any
	Labels []string
	// API is "v2", "v3", "bulk-v2", "bulk-v3" or "jsm".
	API              string
	Created          time.Time
	RaisedOnBehalfOf string
}

// Summary is the issue's summary, if it is a string.
func (i Issue) Summary() string {
	s, _ := i.Fields["summary"].(string)
	return s
}

// Request is one API request as the sandbox answered it.
type Request struct {
	Time   time.Time // arrival
	Method string
	Path   string
	Status int
	// RetryAfter is the answer's Retry-After (a 429's), 0 when it had none.
	RetryAfter time.Duration
}

// Server is the sandbox; it implements http.Handler.
type Server struct {
	cat *catalog
	log *slog.Logger
	mux *http.ServeMux

	mu          sync.Mutex
	opts        Options // live configuration, changed by the setters
	rng         *rand.Rand
	limiter     *rate.Limiter
	authFailure int
	nextNum     int
	issues      []*Issue
	requests    []Request
	added       []addedOption // AddOption calls, for StateFile
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
		cat:     cat,
		log:     opts.Logger,
		opts:    opts,
		rng:     rand.New(rand.NewPCG(uint64(opts.Seed), 0x6a697261)),
		nextNum: opts.StartKey,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.limiter = rate.NewLimiter(rate.Inf, 0)
	s.SetRate(opts.RatePerSecond, opts.Burst)
	if opts.StateFile != "" {
		if err := s.loadState(); err != nil {
			// A sandbox is disposable: say so and start afresh rather than fail.
			s.log.Warn("jira sandbox starts without saved state", "err", err)
			s.issues, s.added = nil, nil
		}
	}
	s.routes()
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) routes() {
	api := http.NewServeMux()
	for _, v := range []string{"2", "3"} {
		p := "/rest/api/" + v
		api.HandleFunc("POST "+p+"/issue", s.handleCreate)
		api.HandleFunc("POST "+p+"/issue/bulk", s.handleBulk)
		api.HandleFunc("GET "+p+"/issue/{key}", s.handleGetIssue)
		api.HandleFunc("PUT "+p+"/issue/{key}", s.handleEditIssue)
		api.HandleFunc("GET "+p+"/issue/createmeta/{project}/issuetypes", s.handleIssueTypes)
		api.HandleFunc("GET "+p+"/issue/createmeta/{project}/issuetypes/{id}", s.handleCreateMeta)
		api.HandleFunc("GET "+p+"/field", s.handleFields)
		api.HandleFunc("GET "+p+"/search/jql", s.handleSearch)
		api.HandleFunc("POST "+p+"/search/jql", s.handleSearch)
		api.HandleFunc("GET "+p+"/myself", s.handleMyself)
	}
	api.HandleFunc("POST /rest/servicedeskapi/request", s.handleCreateRequest)
	api.HandleFunc("GET /rest/servicedeskapi/servicedesk/{desk}/requesttype/{type}/field", s.handleRequestTypeFields)
	api.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeErrors(w, http.StatusNotFound, []string{"null for uri: " + r.URL.Path}, nil)
	})

	s.mux = http.NewServeMux()
	s.mux.Handle("/rest/", s.apiMiddleware(api))
	s.mux.HandleFunc("GET /{$}", s.handlePage)
	s.mux.HandleFunc("GET /sandbox/{$}", s.handlePage)
	s.mux.HandleFunc("GET /sandbox/issues", s.handleIssuesJSON)
	s.mux.HandleFunc("POST /sandbox/options", s.handleAddOption)
	s.mux.HandleFunc("GET /sandbox/config", s.handleConfig)
	s.mux.HandleFunc("POST /sandbox/config", s.handleConfig)
	s.mux.HandleFunc("POST /sandbox/reset", s.handleReset)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// apiMiddleware applies, in Jira's order, what happens before an endpoint
// runs: latency, authentication, the rate limit, then injected 5xx. Every
// API request is logged with its arrival time and final status.
func (s *Server) apiMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			var retryAfter time.Duration
			if secs, err := strconv.Atoi(rec.Header().Get("Retry-After")); err == nil {
				retryAfter = time.Duration(secs) * time.Second
			}
			s.mu.Lock()
			s.requests = append(s.requests, Request{Time: arrived, Method: r.Method, Path: r.URL.Path, Status: rec.status, RetryAfter: retryAfter})
			s.mu.Unlock()
		}()

		s.mu.Lock()
		latency, authFailure := s.opts.Latency, s.authFailure
		s.mu.Unlock()
		if latency > 0 {
			t := time.NewTimer(latency)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				rec.status = 499 // client went away; nothing is written
				return
			}
		}
		if authFailure != 0 {
			writeAuthFailure(rec, authFailure)
			return
		}
		if !s.authenticated(r) {
			writeAuthFailure(rec, http.StatusUnauthorized)
			return
		}
		if !s.allow(rec) {
			return
		}
		if code := s.inject5xx(); code != 0 {
			s.log.Info("jira sandbox injected error", "status", code, "method", r.Method, "path", r.URL.Path)
			writeErrors(rec, code, []string{http.StatusText(code)}, nil)
			return
		}
		next.ServeHTTP(rec, r)
	})
}

func (s *Server) authenticated(r *http.Request) bool {
	s.mu.Lock()
	email, token, pat := s.opts.Email, s.opts.APIToken, s.opts.PAT
	s.mu.Unlock()
	if email == "" && token == "" && pat == "" {
		return true
	}
	if u, p, ok := r.BasicAuth(); ok && (email != "" || token != "") {
		return subtle.ConstantTimeCompare([]byte(u), []byte(email)) == 1 &&
			subtle.ConstantTimeCompare([]byte(p), []byte(token)) == 1
	}
	if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && pat != "" {
		return subtle.ConstantTimeCompare([]byte(bearer), []byte(pat)) == 1
	}
	return false
}

func writeAuthFailure(w http.ResponseWriter, status int) {
	if status == http.StatusForbidden {
		// Jira Cloud's answer when it wants a CAPTCHA or the token lost access.
		w.Header().Set("X-Seraph-LoginReason", "AUTHENTICATION_DENIED")
		writeErrors(w, status, []string{"You do not have permission to access this resource."}, nil)
		return
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="protected-area"`)
	writeErrors(w, http.StatusUnauthorized, []string{"Client must be authenticated to access this resource."}, nil)
}

// allow takes a token or answers 429 with Jira Cloud's rate-limit headers.
func (s *Server) allow(w http.ResponseWriter) bool {
	s.mu.Lock()
	lim := s.limiter
	s.mu.Unlock()
	now := time.Now()
	if lim.Limit() == rate.Inf {
		return true
	}
	res := lim.ReserveN(now, 1) // always OK: burst is at least 1
	delay := res.DelayFrom(now)
	if delay <= 0 {
		return true
	}
	res.CancelAt(now)
	// Whole seconds, rounded up, so a client that honours it finds a token.
	secs := max(int(math.Ceil(delay.Seconds())), 1)
	h := w.Header()
	h.Set("Retry-After", strconv.Itoa(secs))
	h.Set("X-RateLimit-Limit", strconv.Itoa(lim.Burst()))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(max(int(lim.TokensAt(now)), 0)))
	h.Set("X-RateLimit-Reset", now.Add(delay).UTC().Format(time.RFC3339))
	h.Set("RateLimit-Reason", "jira-quota-tenant-based")
	writeErrors(w, http.StatusTooManyRequests, []string{"Rate limit exceeded."}, nil)
	return false
}

func (s *Server) inject5xx() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opts.Error5xxRate <= 0 || s.rng.Float64() >= s.opts.Error5xxRate {
		return 0
	}
	return []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable}[s.rng.IntN(3)]
}

func (s *Server) createdBut500() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opts.CreatedBut500Rate > 0 && s.rng.Float64() < s.opts.CreatedBut500Rate
}

// SetRate changes the rate limit; perSec <= 0 turns it off.
func (s *Server) SetRate(perSec float64, burst int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.RatePerSecond, s.opts.Burst = perSec, burst
	if perSec <= 0 {
		s.limiter = rate.NewLimiter(rate.Inf, 0)
		return
	}
	// A fresh, full bucket: the new limit applies from now on.
	s.limiter = rate.NewLimiter(rate.Limit(perSec), max(burst, 1))
}

// SetError5xxRate changes the fraction of requests answered 500/502/503.
func (s *Server) SetError5xxRate(f float64) {
	s.mu.Lock()
	s.opts.Error5xxRate = f
	s.mu.Unlock()
}

// SetCreatedBut500Rate changes the fraction of creates answered 500 after
// the issue was created.
func (s *Server) SetCreatedBut500Rate(f float64) {
	s.mu.Lock()
	s.opts.CreatedBut500Rate = f
	s.mu.Unlock()
}

// SetLatency changes the latency added to every API call.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	s.opts.Latency = d
	s.mu.Unlock()
}

// SetSearchDelay changes how long new issues stay invisible to search.
func (s *Server) SetSearchDelay(d time.Duration) {
	s.mu.Lock()
	s.opts.SearchDelay = d
	s.mu.Unlock()
}

// SetAuthFailure makes every API call answer status (401 or 403) as Jira
// does for a revoked token or a CAPTCHA-locked account; 0 turns it off.
func (s *Server) SetAuthFailure(status int) {
	if status != 0 && status != http.StatusUnauthorized && status != http.StatusForbidden {
		status = http.StatusUnauthorized
	}
	s.mu.Lock()
	s.authFailure = status
	s.mu.Unlock()
}

// AddOption adds value to the allowed values of a select, radio or checkbox
// field, in createmeta and in the JSM request type alike: what an operator
// does in Jira before replaying a dead-lettered submission.
func (s *Server) AddOption(fieldID, value string) error {
	if err := s.cat.addOption(fieldID, value); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o := addedOption{FieldID: fieldID, Value: value}
	if !slices.Contains(s.added, o) {
		s.added = append(s.added, o)
		s.saveState()
	}
	return nil
}

// Issues returns the created issues, oldest first.
func (s *Server) Issues() []Issue {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Issue, len(s.issues))
	for i, is := range s.issues {
		out[i] = is.clone()
	}
	return out
}

// IssueByLabel returns the issues carrying label, oldest first, whether or
// not search can see them yet.
func (s *Server) IssueByLabel(label string) []Issue {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Issue
	for _, is := range s.issues {
		if slices.Contains(is.Labels, label) {
			out = append(out, is.clone())
		}
	}
	return out
}

// Requests returns the API requests received, in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Reset forgets issues and requests; issue numbering continues, as Jira's
// does after issues are deleted.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.issues, s.requests = nil, nil
	s.saveState()
}

func (i *Issue) clone() Issue {
	c := *i
	c.Fields = maps.Clone(i.Fields)
	c.Labels = slices.Clone(i.Labels)
	return c
}

// allocate takes the next issue number: Jira's counter advances even when
// the create then fails validation, so keys have gaps.
func (s *Server) allocate() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nextNum
	s.nextNum++
	s.saveState()
	return n
}

func (s *Server) record(num int, fields map[string]any, labels []string, api, onBehalfOf string) *Issue {
	is := &Issue{
		Key:              fmt.Sprintf("%s-%d", s.keyPrefix(), num),
		ID:               strconv.Itoa(10000 + num),
		Fields:           fields,
		Labels:           labels,
		API:              api,
		Created:          time.Now(),
		RaisedOnBehalfOf: onBehalfOf,
	}
	s.mu.Lock()
	s.issues = append(s.issues, is)
	s.saveState()
	s.mu.Unlock()
	s.log.Info("jira sandbox issue created", "jira_key", is.Key, "api", api, "labels", labels)
	return is
}

func (s *Server) keyPrefix() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opts.KeyPrefix
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
