package jira

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Error categories a caller branches on.
var (
	// ErrRetryable: 429, 5xx, timeouts, connection errors. Trying again later
	// may succeed.
	ErrRetryable = errors.New("jira: retryable")
	// ErrPermanent: Jira refused the request as such (400 field errors, 404):
	// sending it again will fail the same way.
	ErrPermanent = errors.New("jira: permanent")
	// ErrAuth: Jira refuses the credentials — 401, or a request served as
	// anonymous because the credentials failed (X-Seraph-LoginReason). Nothing
	// succeeds until an operator fixes them.
	ErrAuth = errors.New("jira: authentication failed")
	// ErrPermission: 403. The credentials are good, but the account lacks a
	// permission this call needs (APIError.Permission names it).
	ErrPermission = errors.New("jira: permission missing")
	// ErrExists: the thing to create exists already (409), e.g. a customer
	// with that e-mail: look it up instead.
	ErrExists = errors.New("jira: already exists")
	// ErrCircuitOpen: the call was not sent because Jira as a whole is
	// failing (see Options.Gate); nothing reached Jira.
	ErrCircuitOpen = errors.New("jira: not sent, Jira is down (circuit open)")
	// ErrBatchRejected: a bulk create answered 400 about the request as a
	// whole, naming no element: send its requests one by one to find out.
	ErrBatchRejected = errors.New("jira: bulk create refused as a whole")
)

// APIError is a non-2xx answer from Jira, or a 2xx served to an anonymous
// user.
type APIError struct {
	Op          string // what was attempted: "create", "bulk create", "search", …
	Status      int
	Messages    []string          // errorMessages (platform) or errorMessage (JSM)
	FieldErrors map[string]string // field id → Jira's message
	// RetryAfter is how long Jira asked to wait (Retry-After, else
	// X-RateLimit-Reset) on a 429 or 503.
	RetryAfter time.Duration
	// Reason is a 429's RateLimit-Reason, e.g. jira-burst-based.
	Reason string
	// Anonymous: Jira answered as to an anonymous user (the credentials
	// failed), whatever the status.
	Anonymous bool
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString(e.said())
	for _, id := range slices.Sorted(maps.Keys(e.FieldErrors)) {
		fmt.Fprintf(&b, "; %s: %s", id, e.FieldErrors[id])
	}
	if e.Status == http.StatusForbidden {
		fmt.Fprintf(&b, " (the Jira account needs %s)", e.Permission())
	}
	return b.String()
}

// permissions names, per operation, what a 403 means is missing. Sources:
// the "Permissions required" of each operation in the Jira Cloud platform and
// JSM REST references.
var permissions = map[string]string{
	OpCreate:           "the Browse projects and Create issues permissions in the project",
	OpBulkCreate:       "the Browse projects and Create issues permissions in the project",
	OpRequestCreate:    "to be an agent of the service desk (raiseOnBehalfOf is only for agents)",
	OpAddLabels:        "the Edit issues permission in the project",
	OpSearch:           "the Browse projects permission",
	OpBulkFetch:        "the Browse projects permission",
	OpCreatemeta:       "the Create issues permission in the project",
	OpRequestTypeField: "access to the service desk's request type",
	OpCustomerSearch:   "permission to view the service desk's customers (agent)",
	OpUserSearch:       "the Browse users and groups global permission",
	OpCustomerCreate:   "the Jira Administrators global permission (to create customers), or customers who sign up on the portal themselves",
	OpCustomerAdd:      "to be a service desk administrator (to add customers to the service desk)",
	OpMyself:           "access to Jira",
}

// Said is Jira's answer as it gave it (status and messages), without the
// guess at a missing permission that Error adds to a 403.
func Said(err error) string {
	var ae *APIError
	if !errors.As(err, &ae) {
		return err.Error()
	}
	return ae.said()
}

func (e *APIError) said() string {
	s := fmt.Sprintf("jira %s: %d %s", e.Op, e.Status, http.StatusText(e.Status))
	if e.Anonymous {
		s += ": served as anonymous (X-Seraph-LoginReason: the credentials were refused)"
	}
	if len(e.Messages) > 0 {
		s += ": " + strings.Join(e.Messages, "; ")
	}
	return s
}

// Permission is what a 403 says is missing, in words.
func (e *APIError) Permission() string {
	if p, ok := permissions[e.Op]; ok {
		return p
	}
	return "a permission for " + e.Op
}

// Is maps the status to its category.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrRetryable:
		return !e.Anonymous && (e.Status == http.StatusTooManyRequests || e.Status == http.StatusRequestTimeout || e.Status >= 500)
	case ErrAuth:
		return e.Anonymous || e.Status == http.StatusUnauthorized
	case ErrPermission:
		return !e.Anonymous && e.Status == http.StatusForbidden
	case ErrExists:
		return e.Status == http.StatusConflict
	case ErrPermanent:
		return !e.Anonymous && e.Status >= 400 && e.Status < 500 &&
			e.Status != http.StatusTooManyRequests && e.Status != http.StatusRequestTimeout &&
			e.Status != http.StatusUnauthorized && e.Status != http.StatusForbidden
	}
	return false
}

// transportError is a request that got no HTTP answer (timeout, reset,
// refused). sent is false when the request provably never reached Jira.
type transportError struct {
	op   string
	sent bool
	err  error
}

func (e *transportError) Error() string { return fmt.Sprintf("jira %s: %v", e.op, e.err) }
func (e *transportError) Unwrap() error { return e.err }
func (e *transportError) Is(target error) bool {
	return target == ErrRetryable
}

// waitError is a request that never left: its wait for the pacer (a
// Retry-After, a quota's reset) outlasted its context. Retryable, but not
// Jira failing, so no circuit counts it.
type waitError struct {
	op  string
	err error
}

func (e *waitError) Error() string {
	return fmt.Sprintf("jira %s: waiting for Jira's rate limit: %v", e.op, e.err)
}
func (e *waitError) Unwrap() error        { return e.err }
func (e *waitError) Is(target error) bool { return target == ErrRetryable }

// Throttled reports whether err is Jira's rate limit — a 429, or a wait
// behind the pacer that outlasted its context — rather than a failure:
// Jira paces the whole site, so no event is to blame (issue 14).
func Throttled(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status == http.StatusTooManyRequests && !ae.Anonymous
	}
	var we *waitError
	return errors.As(err, &we)
}

// MaybeCreated reports whether a failed create may nevertheless have
// created the issue: a 5xx or a lost answer leaves the outcome unknown, as
// does a success answered to an anonymous user (a project may let anyone
// create issues). So does a 408: RFC 9110 §15.5.9 has the server give up
// on an incomplete request, but a proxy in front of Jira may answer it
// after passing the whole request on. Other 4xx (including 429) and a
// refused connection mean Jira did nothing.
func MaybeCreated(err error) bool {
	if err == nil || errors.Is(err, ErrCircuitOpen) {
		return false
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status >= 500 || ae.Status == http.StatusRequestTimeout ||
			ae.Anonymous && ae.Status >= 200 && ae.Status < 300
	}
	var te *transportError
	if errors.As(err, &te) {
		return te.sent
	}
	return false
}

// Down reports whether err says Jira itself is failing — no answer, a 5xx,
// a timeout — rather than refusing this request: what a circuit counts.
func Down(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status >= 500 && !ae.Anonymous
	}
	var te *transportError
	return errors.As(err, &te)
}

// RetryAfter is how long Jira asked the client to wait, if it did.
func RetryAfter(err error) time.Duration {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.RetryAfter
	}
	return 0
}
