package jirasandbox

import (
	"crypto/subtle"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cowjacket/formjira/internal/jirasandbox/wire"
)

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

// Unwrap lets http.ResponseController reach the connection (OutageDrop).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// apiMiddleware applies, in Jira's order, what happens before an endpoint
// runs: an outage, latency, authentication, the rate limits, then injected
// 5xx. Every API request is logged with its arrival time and final status.
func (s *Server) apiMiddleware(next *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived := time.Now()
		_, endpoint := next.Handler(r)
		rec := &statusRecorder{ResponseWriter: w}
		entry := Request{Time: arrived, Method: r.Method, Path: r.URL.Path, Endpoint: endpoint}
		// logged runs once the answer is decided: when the handler returns,
		// before the server completes the response, or before a dropped
		// connection is closed, so a client never sees an answer that
		// Requests() does not list yet.
		logged := sync.OnceFunc(func() {
			h := rec.Header()
			if secs, err := strconv.Atoi(h.Get("Retry-After")); err == nil {
				entry.RetryAfter = time.Duration(secs) * time.Second
			}
			if rec.status == http.StatusTooManyRequests {
				entry.RateLimitReason, entry.RateLimitReset = h.Get("RateLimit-Reason"), h.Get("X-RateLimit-Reset")
			}
			entry.Status = rec.status
			s.mu.Lock()
			s.requests = append(s.requests, entry)
			s.mu.Unlock()
		})
		defer logged()

		o, authFailure := s.options()
		if o.Outage != OutageNone {
			entry.Outage = o.Outage
			serveOutage(rec, o, logged)
			return
		}
		if o.Latency > 0 {
			t := time.NewTimer(o.Latency)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				rec.status = 499 // client went away; nothing is written
				return
			}
		}
		if authFailure != 0 {
			writeAuthFailure(rec, r, authFailure, false)
			return
		}
		caller, ok := s.authenticate(rec, r, endpoint, o)
		if !ok {
			return
		}
		entry.Anonymous = caller.Anonymous
		r = r.WithContext(wire.WithCaller(r.Context(), caller))
		ref, ok := s.lim.Take(endpoint, arrived)
		if !ok {
			s.lim.WriteHeaders(rec.Header(), ref, arrived)
			wire.Error(rec, r, http.StatusTooManyRequests, "Rate limit exceeded.", "sd.rate.limit.exceeded")
			return
		}
		s.lim.WriteUsage(rec.Header(), ref)
		if code := s.inject5xx(); code != 0 {
			s.log.Info("jira sandbox injected error", "status", code, "method", r.Method, "path", r.URL.Path)
			wire.Error(rec, r, code, http.StatusText(code), "sd.error")
			return
		}
		next.ServeHTTP(rec, r)
	})
}

// serveOutage answers as a site that is down: Atlassian documents nothing
// about outages beyond "Some transient 5xx responses (such as 503) may
// also include a Retry-After header" (rate-limiting page), so the answer
// is what an edge proxy sends: a 502 or 503 without a JSON body, or no
// answer at all.
func serveOutage(w *statusRecorder, o Options, logged func()) {
	switch o.Outage {
	case OutageDrop:
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			logged()
			_ = conn.Close()
			return
		}
		logged()
		panic(http.ErrAbortHandler) // the server closes the connection
	case Outage502:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("<html><body><h1>502 Bad Gateway</h1></body></html>\n"))
	default:
		if o.OutageRetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(max(int((o.OutageRetryAfter+time.Second-1)/time.Second), 1)))
		}
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("<html><body><h1>503 Service Unavailable</h1><p>Jira is unavailable right now.</p></body></html>\n"))
	}
}

// authenticate decides who r is served as, answering 401 itself when it
// is served as nobody. Authenticated answers carry X-AAccountId, "the
// Atlassian account ID of the authenticated user" (platform intro,
// "Special headers", https://developer.atlassian.com/cloud/jira/platform/rest/v3/intro/),
// and X-Seraph-LoginReason: OK. Wrong or missing
// credentials are 401, except: serverInfo can be accessed anonymously, so
// without credentials it is served to an anonymous user; and with
// AnonymousFallback every anonymous-capable endpoint serves them as an
// anonymous user, with X-Seraph-LoginReason: AUTHENTICATED_FAILED when
// credentials were sent, as Jira Cloud was seen to do (ServiceNow
// KB2942093, https://support.servicenow.com/kb?id=kb_article_view&sysparm_article=KB2942093).
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, endpoint string, o Options) (wire.Caller, bool) {
	if (o.Email == "" && o.APIToken == "" && o.PAT == "") || credentialsOK(r, o) {
		w.Header().Set("X-AAccountId", BotAccountID)
		w.Header().Set("X-Seraph-LoginReason", "OK")
		return wire.Caller{AccountID: BotAccountID}, true
	}
	sent := r.Header.Get("Authorization") != ""
	anonOK := s.anon[endpoint]
	if strings.HasSuffix(endpoint, "/myself") {
		anonOK = o.AnonymousFallback && !o.AnonymousMyself401
	}
	serverInfo := strings.HasSuffix(endpoint, "/serverInfo")
	if anonOK && (o.AnonymousFallback || (serverInfo && !sent)) {
		if sent {
			w.Header().Set("X-Seraph-LoginReason", "AUTHENTICATED_FAILED")
		}
		return wire.Caller{Anonymous: true}, true
	}
	writeAuthFailure(w, r, http.StatusUnauthorized, sent)
	return wire.Caller{}, false
}

func credentialsOK(r *http.Request, o Options) bool {
	if u, p, ok := r.BasicAuth(); ok && (o.Email != "" || o.APIToken != "") {
		return subtle.ConstantTimeCompare([]byte(u), []byte(o.Email)) == 1 &&
			subtle.ConstantTimeCompare([]byte(p), []byte(o.APIToken)) == 1
	}
	if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && o.PAT != "" {
		return subtle.ConstantTimeCompare([]byte(bearer), []byte(o.PAT)) == 1
	}
	return false
}

// writeAuthFailure answers 401 or 403 in the shape of the API called. A
// 401 for credentials that were sent carries X-Seraph-LoginReason:
// AUTHENTICATED_FAILED, as Jira Cloud's do (JIRA ID-6351).
func writeAuthFailure(w http.ResponseWriter, r *http.Request, status int, credentialsSent bool) {
	if status == http.StatusForbidden {
		// Jira Cloud's answer when it wants a CAPTCHA or the token lost access.
		w.Header().Set("X-Seraph-LoginReason", "AUTHENTICATION_DENIED")
		wire.Error(w, r, status, "You do not have permission to access this resource.", "sd.error.forbidden")
		return
	}
	if credentialsSent {
		w.Header().Set("X-Seraph-LoginReason", "AUTHENTICATED_FAILED")
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="protected-area"`)
	wire.Error(w, r, http.StatusUnauthorized, "Client must be authenticated to access this resource.", "sd.error.unauthorized")
}

func (s *Server) inject5xx() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opts.Error5xxRate <= 0 || s.rng.Float64() >= s.opts.Error5xxRate {
		return 0
	}
	return []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable}[s.rng.IntN(3)]
}
