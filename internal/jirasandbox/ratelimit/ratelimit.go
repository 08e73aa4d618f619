// Package ratelimit models Jira Cloud's burst rate limits: "enforced per
// tenant and per API/resource path", a token bucket per endpoint and
// method, so that e.g. POST …/issue/bulk and POST …/issue/bulkfetch are
// limited separately; plus an optional site-wide bucket standing for the
// tenant's quota. A refusal is a 429 whose headers follow one of the
// variants Jira has been seen to send.
// https://developer.atlassian.com/cloud/jira/platform/rate-limiting/
package ratelimit

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limit is a token bucket: PerSecond tokens a second, Burst at most.
// PerSecond <= 0 is no limit.
type Limit struct {
	PerSecond float64 `json:"perSecond"`
	Burst     int     `json:"burst"`
}

// Limits are the buckets of a site.
type Limits struct {
	// Endpoint is every endpoint's own bucket.
	Endpoint Limit
	// Endpoints overrides Endpoint for the endpoints named, by route
	// ("GET /rest/servicedeskapi/servicedesk/{desk}/customer", which Jira
	// documents at 5 per second); PerSecond <= 0 there exempts one.
	Endpoints map[string]Limit
	// Tenant, when set, is one more bucket that every call draws on.
	Tenant Limit
}

// Headers says which headers a 429 carries.
type Headers string

const (
	// HeadersRetryAfter: Retry-After (whole seconds) with X-RateLimit-Limit,
	// -Remaining, -Reset and RateLimit-Reason, as the page's example 429.
	HeadersRetryAfter Headers = "retry-after"
	// HeadersReset: only X-RateLimit-Reset and RateLimit-Reason, no
	// Retry-After (JRACLOUD-82801 reports 429s without it).
	HeadersReset Headers = "reset"
	// HeadersNone: a bare 429.
	HeadersNone Headers = "none"
)

// X-RateLimit-Reset is an ISO 8601 timestamp. The current page's examples
// carry seconds; the older page said "yyyy-MM-ddTHH:mmZ" and beta headers
// were seen without them (research notes §6.2): both layouts are served.
const (
	ResetSeconds = "2006-01-02T15:04:05Z"
	ResetMinutes = "2006-01-02T15:04Z"
)

// RateLimit-Reason values documented on the rate-limiting page.
const (
	ReasonBurst    = "jira-burst-based"
	ReasonTenant   = "jira-quota-tenant-based"
	ReasonGlobal   = "jira-quota-global-based"
	ReasonPerIssue = "jira-per-issue-on-write"
)

// Style is how refusals are worded.
type Style struct {
	Headers     Headers // "" = HeadersRetryAfter
	ResetLayout string  // "" = ResetSeconds
	// Reason, when set, replaces the documented RateLimit-Reason (e.g. the
	// older "jira-cost-based", to test a client against unknown reasons).
	Reason string
}

// Refusal describes one 429.
type Refusal struct {
	Delay     time.Duration // until the bucket has a token again
	PerSecond float64
	Burst     int
	Remaining int
	Reason    string
}

// Limiter holds a site's buckets. Safe for concurrent use.
type Limiter struct {
	mu      sync.Mutex
	limits  Limits
	style   Style
	buckets map[string]*rate.Limiter
	tenant  *rate.Limiter
}

// New builds a limiter with no limits.
func New() *Limiter { return &Limiter{buckets: map[string]*rate.Limiter{}} }

// SetLimits replaces the limits; every bucket starts afresh, full.
func (l *Limiter) SetLimits(lim Limits) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.limits = lim
	l.buckets = map[string]*rate.Limiter{}
	l.tenant = bucket(lim.Tenant)
}

// SetStyle changes how refusals are worded; buckets are kept.
func (l *Limiter) SetStyle(s Style) {
	l.mu.Lock()
	l.style = s
	l.mu.Unlock()
}

func bucket(lim Limit) *rate.Limiter {
	if lim.PerSecond <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(lim.PerSecond), max(lim.Burst, 1))
}

// Take draws a token for endpoint from its bucket and the tenant's; on a
// refusal nothing is drawn. On success the Refusal value describes the
// endpoint's bucket after the draw (PerSecond 0: unlimited), for the usage
// headers of a normal answer.
func (l *Limiter) Take(endpoint string, now time.Time) (Refusal, bool) {
	l.mu.Lock()
	b, ok := l.buckets[endpoint]
	if !ok {
		lim, over := l.limits.Endpoints[endpoint]
		if !over {
			lim = l.limits.Endpoint
		}
		b = bucket(lim)
		l.buckets[endpoint] = b
	}
	tenant := l.tenant
	l.mu.Unlock()

	var held *rate.Reservation
	if b != nil {
		res := b.ReserveN(now, 1) // always OK: burst is at least 1
		if d := res.DelayFrom(now); d > 0 {
			res.CancelAt(now)
			return Refusal{Delay: d, PerSecond: float64(b.Limit()), Remaining: max(int(b.TokensAt(now)), 0), Reason: ReasonBurst}, false
		}
		held = res
	}
	if tenant != nil {
		res := tenant.ReserveN(now, 1)
		if d := res.DelayFrom(now); d > 0 {
			res.CancelAt(now)
			if held != nil {
				held.CancelAt(now)
			}
			return Refusal{Delay: d, PerSecond: float64(tenant.Limit()), Remaining: max(int(tenant.TokensAt(now)), 0), Reason: ReasonTenant}, false
		}
	}
	if b == nil {
		return Refusal{}, true
	}
	return Refusal{PerSecond: float64(b.Limit()), Burst: b.Burst(), Remaining: max(int(b.TokensAt(now)), 0)}, true
}

// WriteUsage sets the headers a normal answer of a limited endpoint
// carries: X-RateLimit-Limit ("for request rate limits … the allowed
// requests per second"), X-RateLimit-Remaining and X-RateLimit-NearLimit
// ("true when less than 20% of capacity remains"); the page marks only
// Retry-After, X-RateLimit-Reset and RateLimit-Reason as 429-only.
// https://developer.atlassian.com/cloud/jira/platform/rate-limiting/
// Only in the default style: the other styles stand for sites that send
// little.
func (l *Limiter) WriteUsage(h http.Header, usage Refusal) {
	l.mu.Lock()
	st := l.style
	l.mu.Unlock()
	if usage.PerSecond <= 0 || (st.Headers != "" && st.Headers != HeadersRetryAfter) {
		return
	}
	h.Set("X-RateLimit-Limit", strconv.Itoa(max(int(math.Ceil(usage.PerSecond)), 1)))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(usage.Remaining))
	h.Set("X-RateLimit-NearLimit", strconv.FormatBool(float64(usage.Remaining) < 0.2*float64(max(usage.Burst, 1))))
}

// WriteHeaders sets a 429's headers for ref in the limiter's style.
// Retry-After is whole seconds rounded up, so a client that honours it
// finds a token; X-RateLimit-Reset is the first whole second with a token,
// in the chosen layout (without seconds it is truncated to the minute and
// may lie in the past, as a minute-precision header would).
func (l *Limiter) WriteHeaders(h http.Header, ref Refusal, now time.Time) {
	l.mu.Lock()
	st := l.style
	l.mu.Unlock()
	secs := max(int(math.Ceil(ref.Delay.Seconds())), 1)
	layout := st.ResetLayout
	if layout == "" {
		layout = ResetSeconds
	}
	reason := ref.Reason
	if st.Reason != "" {
		reason = st.Reason
	}
	at := now.Add(ref.Delay)
	if t := at.Truncate(time.Second); !t.Equal(at) {
		at = t.Add(time.Second) // the first whole second with a token
	}
	reset := at.UTC().Format(layout)
	switch st.Headers {
	case HeadersNone:
	case HeadersReset:
		h.Set("X-RateLimit-Reset", reset)
		h.Set("RateLimit-Reason", reason)
	default:
		h.Set("Retry-After", strconv.Itoa(secs))
		// "For request rate limits, this reflects the allowed requests per second."
		h.Set("X-RateLimit-Limit", strconv.Itoa(max(int(math.Ceil(ref.PerSecond)), 1)))
		h.Set("X-RateLimit-Remaining", strconv.Itoa(ref.Remaining))
		h.Set("X-RateLimit-Reset", reset)
		h.Set("RateLimit-Reason", reason)
	}
}
