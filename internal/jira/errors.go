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
	// ErrAuth: 401/403, the credentials are wrong, revoked or locked. Nothing
	// succeeds until an operator fixes them.
	ErrAuth = errors.New("jira: authentication failed")
)

// APIError is a non-2xx answer from Jira.
type APIError struct {
	Op          string // what was attempted: "create", "bulk create", "search", …
	Status      int
	Messages    []string          // errorMessages (platform) or errorMessage (JSM)
	FieldErrors map[string]string // field id → Jira's message
	RetryAfter  time.Duration     // from Retry-After on 429/503
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "jira %s: %d %s", e.Op, e.Status, http.StatusText(e.Status))
	if len(e.Messages) > 0 {
		b.WriteString(": ")
		b.WriteString(strings.Join(e.Messages, "; "))
	}
	for _, id := range slices.Sorted(maps.Keys(e.FieldErrors)) {
		fmt.Fprintf(&b, "; %s: %s", id, e.FieldErrors[id])
	}
	return b.String()
}

// Is maps the status to its category.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrRetryable:
		return e.Status == http.StatusTooManyRequests || e.Status == http.StatusRequestTimeout || e.Status >= 500
	case ErrAuth:
		return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
	case ErrPermanent:
		return e.Status >= 400 && e.Status < 500 &&
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

// MaybeCreated reports whether a failed create may nevertheless have
// created the issue: a 5xx or a lost answer leaves the outcome unknown, while
// 4xx (including 429) and a refused connection mean Jira did nothing.
func MaybeCreated(err error) bool {
	if err == nil {
		return false
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status >= 500
	}
	var te *transportError
	if errors.As(err, &te) {
		return te.sent
	}
	return false
}

// RetryAfter is how long Jira asked the client to wait, if it did.
func RetryAfter(err error) time.Duration {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.RetryAfter
	}
	return 0
}
