// Package jira is ticketer's Jira client: the few calls it needs (create,
// bulk create, JSM request, createmeta, search by label, myself), over
// go-atlassian's clients, with one shared pacer and errors sorted into the
// categories the caller acts on (ErrRetryable, ErrPermanent, ErrAuth).
//
// Each method makes one attempt; retrying is the caller's business because
// only the caller knows whether a create may be repeated.
package jira

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ctreminiom/go-atlassian/v2/jira/sm"
	v2 "github.com/ctreminiom/go-atlassian/v2/jira/v2"
	v3 "github.com/ctreminiom/go-atlassian/v2/jira/v3"
	"github.com/ctreminiom/go-atlassian/v2/pkg/infra/models"
)

// Options configure a Client.
type Options struct {
	URL string // site, e.g. https://cowjacket.atlassian.net
	// Email and APIToken: Jira Cloud basic auth. PAT: Data Center bearer
	// token, used when Email is empty.
	Email, APIToken, PAT string
	// APIVersion is the platform REST version, 2 or 3 (default 2).
	APIVersion int
	// Timeout bounds one HTTP request (default 30s).
	Timeout time.Duration
	// Pacer gates every request; nil = a private unpaced one.
	Pacer *Pacer
	// CAFile is a PEM file of CA certificates trusted beside the system's,
	// for a Jira Data Center behind a private CA.
	CAFile string
	// HTTPClient overrides the transport (tests); its Timeout and
	// CheckRedirect are replaced, and CAFile does not apply to it.
	HTTPClient *http.Client
	// Observe, if set, is called after every request with the operation
	// name, the HTTP status (0 when none arrived) and the duration.
	Observe func(op string, status int, d time.Duration)
	// Gate, if set, is asked before every request but probes (see Probe):
	// an error (ErrCircuitOpen) fails the call without sending it.
	Gate func(op string) error
	// Result, if set, is told every outcome (nil: an answer that says Jira
	// works), so a circuit can count failures; probes included.
	Result func(op string, err error)
}

// The operations, as Observe and the pacer's lanes name them: one per
// endpoint, since Jira limits bursts per endpoint.
const (
	OpCreate           = "create"
	OpBulkCreate       = "bulk create"
	OpRequestCreate    = "request create"
	OpAddLabels        = "add labels"
	OpSearch           = "search"
	OpBulkFetch        = "bulkfetch"
	OpCreatemeta       = "createmeta"
	OpRequestTypeField = "request type fields"
	OpMyself           = "myself"
	OpServerInfo       = "server info"
	OpCustomerSearch   = "customer search"
	OpUserSearch       = "user search"
	OpCustomerCreate   = "customer create"
	OpCustomerAdd      = "customer add"
)

// caller is what go-atlassian's v2, v3 and sm clients have in common: they
// build authenticated requests and return the raw answer with it.
type caller interface {
	NewRequest(ctx context.Context, method, urlStr, contentType string, body interface{}) (*http.Request, error)
	Call(request *http.Request, structure interface{}) (*models.ResponseScheme, error)
}

// Client talks to one Jira site.
type Client struct {
	platform caller
	desk     caller
	version  int
	pacer    *Pacer
	observe  func(string, int, time.Duration)
	gate     func(string) error
	result   func(string, error)
	// dataCenter: the site answered the enhanced search or bulkfetch,
	// both Cloud's, with 404: a Jira Data Center (see search).
	dataCenter atomic.Bool
}

// New builds a client. Credentials stay inside go-atlassian's auth service;
// no error or log line of this package contains them.
func New(o Options) (*Client, error) {
	if o.URL == "" {
		return nil, errors.New("jira: no site URL")
	}
	if u, err := url.Parse(o.URL); err != nil || u.Host == "" {
		return nil, errors.New("jira: site URL is not an absolute URL")
	}
	if o.APIVersion == 0 {
		o.APIVersion = 2
	}
	if o.APIVersion != 2 && o.APIVersion != 3 {
		return nil, fmt.Errorf("jira: API version %d, want 2 or 3", o.APIVersion)
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	hc, err := httpClient(o)
	if err != nil {
		return nil, err
	}
	if o.Pacer == nil {
		o.Pacer = NewPacer(0)
	}
	c := &Client{version: o.APIVersion, pacer: o.Pacer, observe: o.Observe, gate: o.Gate, result: o.Result}
	auth := func(a interface {
		SetBasicAuth(mail, token string)
		SetBearerToken(token string)
		SetUserAgent(agent string)
	}) {
		if o.Email != "" || o.APIToken != "" {
			a.SetBasicAuth(o.Email, o.APIToken)
		} else if o.PAT != "" {
			a.SetBearerToken(o.PAT)
		}
		a.SetUserAgent("cowjacket-ticketer")
	}
	if o.APIVersion == 3 {
		var p *v3.Client
		if p, err = v3.New(hc, o.URL); err == nil {
			auth(p.Auth)
			c.platform = p
		}
	} else {
		var p *v2.Client
		if p, err = v2.New(hc, o.URL); err == nil {
			auth(p.Auth)
			c.platform = p
		}
	}
	if err != nil {
		return nil, fmt.Errorf("jira: client: %w", err)
	}
	d, err := sm.New(hc, o.URL)
	if err != nil {
		return nil, fmt.Errorf("jira: service desk client: %w", err)
	}
	auth(d.Auth)
	// GET servicedesk/{id}/customer is experimental: without this header
	// Jira answers 412; headers of stable methods are ignored
	// (https://developer.atlassian.com/cloud/jira/service-desk/rest/intro/#experimental-methods).
	d.Auth.SetExperimentalFlag()
	c.desk = d
	return c, nil
}

// APIVersion is the platform REST version in use.
func (c *Client) APIVersion() int { return c.version }

func (c *Client) api(path string) string {
	return "rest/api/" + strconv.Itoa(c.version) + "/" + path
}

// do sends one paced request and returns the raw body of a 2xx answer.
// A non-2xx answer is an *APIError (or, for a bulk create, the caller reads
// the body itself: see BulkCreate); no answer is a transportError.
func (c *Client) do(ctx context.Context, via caller, op, method, path string, body any) (int, []byte, error) {
	status, raw, err := c.send(ctx, via, op, method, path, body)
	if c.result != nil {
		c.result(op, err)
	}
	return status, raw, err
}

func (c *Client) send(ctx context.Context, via caller, op, method, path string, body any) (int, []byte, error) {
	if c.gate != nil && ctx.Value(probeKey{}) == nil {
		if err := c.gate(op); err != nil {
			return 0, nil, err
		}
	}
	if ctx.Value(pacedKey{}) == nil {
		if err := c.pacer.Wait(ctx, op); err != nil {
			return 0, nil, &waitError{op: op, err: err}
		}
	}
	if by, ok := CreateDeadline(ctx); ok && creates(op) {
		if !time.Now().Before(by) {
			// Provably not sent, so no reconciliation is needed.
			return 0, nil, &transportError{op: op, err: fmt.Errorf("the create's deadline passed before it was sent: %w", context.DeadlineExceeded)}
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, by)
		defer cancel()
	}
	req, err := via.NewRequest(ctx, method, path, "", body)
	if err != nil {
		return 0, nil, fmt.Errorf("jira %s: build request: %w", op, err)
	}
	start := time.Now()
	res, err := via.Call(req, nil)
	defer c.pacer.Answered(op)
	status := 0
	if res != nil {
		status = res.Code
	}
	if c.observe != nil {
		c.observe(op, status, time.Since(start))
	}
	if res == nil {
		return 0, nil, &transportError{op: op, sent: !notSent(err), err: redactURLError(err)}
	}
	raw := res.Bytes.Bytes()
	var h http.Header
	if res.Response != nil {
		h = res.Response.Header
	}
	if anonymous(h) {
		// Failed credentials served as anonymous: whatever the status, the
		// answer is not about our account (it may be an empty 200).
		return status, raw, &APIError{Op: op, Status: status, Anonymous: true}
	}
	if status >= 200 && status < 300 {
		c.pacer.Succeeded(op)
		// Jira says the endpoint's rate ("for request rate limits, this
		// reflects the allowed requests per second", the rate-limiting
		// page): pace at it from now on, rather than find it by 429s.
		if limit, ok := rateOf(h); ok {
			c.pacer.Told(op, limit)
		}
		return status, raw, nil
	}
	ae := parseAPIError(op, status, raw)
	ae.RetryAfter, ae.Reason = retryAfter(h, time.Now()), h.Get("RateLimit-Reason")
	if status == http.StatusTooManyRequests {
		limit, _ := rateOf(h)
		c.pacer.Throttled(op, ae.RetryAfter, ae.Reason, limit)
	}
	return status, raw, ae
}

// anonymous: Jira Cloud may serve a request whose credentials failed as an
// anonymous one, with X-Seraph-LoginReason: AUTHENTICATED_FAILED (or
// AUTHENTICATION_DENIED, a CAPTCHA lock) and even a 200 on operations that
// allow anonymous access; see the Jira Server basic-auth docs and
// ServiceNow KB2942093, in /work/notes: the reason is Seraph's, documented
// for Server, observed on Cloud.
func anonymous(h http.Header) bool {
	switch strings.ToUpper(h.Get("X-Seraph-LoginReason")) {
	case "AUTHENTICATED_FAILED", "AUTHENTICATION_DENIED":
		return true
	}
	return false
}

type probeKey struct{}

// Probe marks ctx as a health probe: it passes a closed gate (Options.Gate),
// because finding out whether Jira is back is its purpose.
func Probe(ctx context.Context) context.Context { return context.WithValue(ctx, probeKey{}, true) }

// notSent: the connection was never made, so Jira cannot have acted.
func notSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return false
}

// redactURLError drops the URL's query from a transport error (JQL can be
// long; credentials are never in the URL, they travel in headers).
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		u := ue.URL
		if i := strings.IndexByte(u, '?'); i >= 0 {
			u = u[:i]
		}
		return &url.Error{Op: ue.Op, URL: u, Err: ue.Err}
	}
	return err
}

// retryAfter is how long a 429 or 503 asks to wait: Retry-After (seconds
// or an HTTP date), else X-RateLimit-Reset, an ISO 8601 time Atlassian
// writes with or without seconds ("2026-01-01T01:01:01Z", "…T16:00Z"; the
// rate-limiting page and JRACLOUD-69262); 0 when neither is there.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			return time.Duration(n) * time.Second
		}
		if t, err := http.ParseTime(v); err == nil {
			return max(t.Sub(now), 0)
		}
	}
	if v := strings.TrimSpace(h.Get("X-RateLimit-Reset")); v != "" {
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00"} {
			if t, err := time.Parse(layout, v); err == nil {
				return max(t.Sub(now), 0)
			}
		}
	}
	return 0
}

// rateOf is the request rate, per second, an answer's headers allow. Cloud:
// X-RateLimit-Limit, "the allowed requests per second". Data Center: its
// token bucket, X-RateLimit-FillRate tokens every
// X-RateLimit-Interval-Seconds; its X-RateLimit-Limit is the bucket's size
// (https://confluence.atlassian.com/adminjiraserver/improving-instance-stability-with-rate-limiting-983794911.html).
func rateOf(h http.Header) (float64, bool) {
	fill, ferr := strconv.ParseFloat(strings.TrimSpace(h.Get("X-RateLimit-FillRate")), 64)
	every, ierr := strconv.ParseFloat(strings.TrimSpace(h.Get("X-RateLimit-Interval-Seconds")), 64)
	if ferr == nil && ierr == nil && fill > 0 && every > 0 {
		return fill / every, true
	}
	limit, err := strconv.ParseFloat(strings.TrimSpace(h.Get("X-RateLimit-Limit")), 64)
	return limit, err == nil
}

// parseAPIError reads Jira's two error shapes: the platform's
// {"errorMessages":[…],"errors":{id:msg}} and JSM's {"errorMessage":"…",
// "i18nErrorMessage":{"i18nKey":…,"parameters":[…]}}
// (https://developer.atlassian.com/cloud/jira/service-desk/rest/intro/#status-codes).
func parseAPIError(op string, status int, raw []byte) *APIError {
	ae := &APIError{Op: op, Status: status}
	var body struct {
		ErrorMessages []string          `json:"errorMessages"`
		Errors        map[string]string `json:"errors"`
		ErrorMessage  string            `json:"errorMessage"`
		I18n          *struct {
			Key string `json:"i18nKey"`
		} `json:"i18nErrorMessage"`
	}
	if json.Unmarshal(raw, &body) != nil {
		if s := strings.TrimSpace(string(raw)); s != "" && len(s) < 300 && !strings.HasPrefix(s, "<") {
			ae.Messages = []string{s}
		}
		return ae
	}
	ae.Messages = body.ErrorMessages
	if len(body.Errors) > 0 {
		ae.FieldErrors = body.Errors
	}
	if body.ErrorMessage == "" && body.I18n != nil && body.I18n.Key != "" {
		body.ErrorMessage = body.I18n.Key // the translation may be missing; the key names the error
	}
	if body.ErrorMessage != "" {
		ae.Messages = append(ae.Messages, body.ErrorMessage)
		if fe := jsmFieldErrors(body.ErrorMessage); len(fe) > 0 {
			ae.FieldErrors = fe
		}
	}
	return ae
}

// jsmFieldErrors recovers "customfield_10073: Option value … is not valid"
// parts from a JSM error message, which has no per-field structure.
func jsmFieldErrors(msg string) map[string]string {
	out := map[string]string{}
	for _, part := range strings.Split(msg, "; ") {
		i := strings.LastIndex(part, "customfield_")
		if i < 0 {
			for _, sys := range []string{"summary: ", "description: "} {
				if j := strings.LastIndex(part, sys); j >= 0 {
					i = j
				}
			}
		}
		if i < 0 {
			continue
		}
		id, text, ok := strings.Cut(part[i:], ": ")
		if ok && !strings.ContainsAny(id, " ,") {
			out[id] = strings.TrimSpace(text)
		}
	}
	return out
}

type pacedKey struct{}

type sendByKey struct{}

// SendBy bounds the create made with ctx (Create, BulkCreate's POST): it
// ends, client side, by t, whatever its timeout; the calls around it (a
// bulk's read-back) are not bound. A caller whose claim on the request
// may be taken over from some moment on needs the create over by then.
func SendBy(ctx context.Context, t time.Time) context.Context {
	return context.WithValue(ctx, sendByKey{}, t)
}

// CreateDeadline is the time SendBy set on ctx.
func CreateDeadline(ctx context.Context) (time.Time, bool) {
	t, ok := ctx.Value(sendByKey{}).(time.Time)
	return t, ok
}

func creates(op string) bool { return op == OpCreate || op == OpBulkCreate || op == OpRequestCreate }

// Paced marks ctx as having already waited on the client's Pacer for its
// request: the caller took the turn (Pacer.Wait) itself, to do something
// right before sending. Use it for exactly one request.
func Paced(ctx context.Context) context.Context { return context.WithValue(ctx, pacedKey{}, true) }
