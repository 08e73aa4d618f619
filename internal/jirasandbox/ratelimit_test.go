package jirasandbox_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cowjacket/formjira/internal/jirasandbox"
)

type call struct{ method, path, body string }

var (
	bulkfetch  = call{http.MethodPost, "/rest/api/3/issue/bulkfetch", `{"issueIdsOrKeys":["CP-1"]}`}
	bulkCreate = call{http.MethodPost, "/rest/api/3/issue/bulk", `{"issueUpdates":[]}`}
	myself3    = call{http.MethodGet, "/rest/api/3/myself", ""}
	myself2    = call{http.MethodGet, "/rest/api/2/myself", ""}
	serverInfo = call{http.MethodGet, "/rest/api/3/serverInfo", ""}
	customers  = call{http.MethodGet, "/rest/servicedeskapi/servicedesk/4/customer", ""}
)

func (c call) do(t *testing.T, url string) (int, http.Header, []byte) {
	t.Helper()
	b, code, h := httpDoHeader(t, c.method, url+c.path, c.body, http.Header{"X-Experimentalapi": {"opt-in"}})
	return code, h, b
}

// TestRateLimitPerEndpoint: Jira's burst limits are "per tenant and per
// API/resource path": each endpoint and method has its own bucket.
func TestRateLimitPerEndpoint(t *testing.T) {
	sb, url := start(t, jirasandbox.Options{RatePerSecond: 0.5, Burst: 1})
	var got []int
	for _, c := range []call{bulkfetch, bulkfetch, bulkCreate, myself3, myself2, bulkCreate, myself3} {
		code, _, _ := c.do(t, url)
		got = append(got, code)
	}
	if want := []int{200, 429, 400, 200, 200, 429, 429}; !slices.Equal(got, want) {
		t.Fatalf("statuses %v, want %v", got, want)
	}
	reqs := sb.Requests()
	if reqs[0].Endpoint != "POST /rest/api/3/issue/bulkfetch" || reqs[2].Endpoint != "POST /rest/api/3/issue/bulk" || reqs[4].Endpoint != "GET /rest/api/2/myself" {
		t.Errorf("endpoints %q %q %q", reqs[0].Endpoint, reqs[2].Endpoint, reqs[4].Endpoint)
	}
	if r := reqs[1]; r.RateLimitReason != "jira-burst-based" || r.RetryAfter < time.Second || r.RateLimitReset == "" {
		t.Errorf("429 logged as %+v", r)
	}
	if n := sb.CountStatus(http.StatusTooManyRequests); n != 3 {
		t.Errorf("CountStatus(429) = %d", n)
	}
}

// TestRateLimitOverridesAndTenant: one endpoint can have its own limit
// (or none); a tenant-wide bucket limits everything together, and an
// endpoint's refusal costs the tenant bucket nothing.
func TestRateLimitOverridesAndTenant(t *testing.T) {
	t.Run("override", func(t *testing.T) {
		sb, url := start(t, jirasandbox.Options{EndpointRates: map[string]jirasandbox.Limit{
			"GET /rest/servicedeskapi/servicedesk/{desk}/customer": {PerSecond: 0.5, Burst: 1},
		}})
		var got []int
		for _, c := range []call{customers, customers, myself3, myself3, myself3} {
			code, _, _ := c.do(t, url)
			got = append(got, code)
		}
		if want := []int{200, 429, 200, 200, 200}; !slices.Equal(got, want) {
			t.Errorf("statuses %v, want %v", got, want)
		}
		sb.SetRate(0.5, 1)
		sb.SetEndpointRates(map[string]jirasandbox.Limit{"GET /rest/api/3/serverInfo": {}})
		got = nil
		for _, c := range []call{serverInfo, serverInfo, serverInfo, myself3, myself3} {
			code, _, _ := c.do(t, url)
			got = append(got, code)
		}
		if want := []int{200, 200, 200, 200, 429}; !slices.Equal(got, want) {
			t.Errorf("exempt serverInfo: %v, want %v", got, want)
		}
	})
	t.Run("tenant", func(t *testing.T) {
		sb, url := start(t, jirasandbox.Options{RatePerSecond: 0.5, Burst: 1, TenantRatePerSecond: 0.5, TenantBurst: 2})
		var got []int
		for _, c := range []call{myself3, myself3, myself2, serverInfo} {
			code, _, _ := c.do(t, url)
			got = append(got, code)
		}
		if want := []int{200, 429, 200, 429}; !slices.Equal(got, want) {
			t.Fatalf("statuses %v, want %v", got, want)
		}
		reasons := []string{}
		for _, r := range sb.Requests() {
			reasons = append(reasons, r.RateLimitReason)
		}
		if want := []string{"", "jira-burst-based", "", "jira-quota-tenant-based"}; !slices.Equal(reasons, want) {
			t.Errorf("reasons %q, want %q", reasons, want)
		}
		sb.SetTenantRate(0, 0)
		if code, _, _ := serverInfo.do(t, url); code != 200 {
			t.Errorf("tenant limit off: %d", code)
		}
	})
}

// TestRateLimitHeaderVariants: Retry-After (with the X-RateLimit-*
// family), X-RateLimit-Reset alone in either ISO 8601 layout, or nothing.
func TestRateLimitHeaderVariants(t *testing.T) {
	for _, tc := range []struct {
		name    string
		headers jirasandbox.RateLimitHeaders
		layout  string
		reason  string
		present []string
		absent  []string
	}{
		{"default", "", "", "", []string{"Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "RateLimit-Reason"}, nil},
		{"reset only, seconds", jirasandbox.RateLimitResetOnly, jirasandbox.ResetLayoutSeconds, "", []string{"X-RateLimit-Reset", "RateLimit-Reason"}, []string{"Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining"}},
		{"reset only, minutes", jirasandbox.RateLimitResetOnly, jirasandbox.ResetLayoutMinutes, "", []string{"X-RateLimit-Reset", "RateLimit-Reason"}, []string{"Retry-After"}},
		{"none", jirasandbox.RateLimitNoHeaders, "", "", nil, []string{"Retry-After", "X-RateLimit-Reset", "RateLimit-Reason", "X-RateLimit-Limit"}},
		{"legacy reason", jirasandbox.RateLimitRetryAfter, "", "jira-cost-based", []string{"Retry-After", "RateLimit-Reason"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sb, url := start(t, jirasandbox.Options{RatePerSecond: 0.5, Burst: 1})
			sb.SetRateLimitHeaders(tc.headers, tc.layout)
			sb.SetRateLimitReason(tc.reason)
			myself3.do(t, url)
			before := time.Now()
			code, h, body := myself3.do(t, url)
			if code != 429 {
				t.Fatalf("status %d", code)
			}
			for _, k := range tc.present {
				if h.Get(k) == "" {
					t.Errorf("missing %s", k)
				}
			}
			for _, k := range tc.absent {
				if v := h.Get(k); v != "" {
					t.Errorf("%s: %q should be absent", k, v)
				}
			}
			if reset := h.Get("X-RateLimit-Reset"); reset != "" {
				layout := tc.layout
				if layout == "" {
					layout = jirasandbox.ResetLayoutSeconds
				}
				at, err := time.Parse(layout, reset)
				if err != nil {
					t.Errorf("X-RateLimit-Reset %q in layout %q: %v", reset, layout, err)
				}
				if layout == jirasandbox.ResetLayoutMinutes && strings.Count(reset, ":") != 1 {
					t.Errorf("minutes layout carries seconds: %q", reset)
				}
				if layout == jirasandbox.ResetLayoutSeconds && (at.Before(before.Add(time.Second).Truncate(time.Second)) || at.After(before.Add(3*time.Second))) {
					t.Errorf("reset %v, want about 2 s after %v", at, before)
				}
			}
			wantReason := "jira-burst-based"
			if tc.reason != "" {
				wantReason = tc.reason
			}
			if r := h.Get("RateLimit-Reason"); r != "" && r != wantReason {
				t.Errorf("RateLimit-Reason %q, want %q", r, wantReason)
			}
			if !strings.Contains(string(body), `"errorMessages"`) {
				t.Errorf("platform 429 body %s", body)
			}
			last := sb.Requests()[1]
			if (last.RetryAfter != 0) != slices.Contains(tc.present, "Retry-After") || last.RateLimitReset != h.Get("X-RateLimit-Reset") {
				t.Errorf("logged %+v", last)
			}
		})
	}

	t.Run("JSM shape", func(t *testing.T) {
		_, url := start(t, jirasandbox.Options{RatePerSecond: 0.5, Burst: 1})
		customers.do(t, url)
		code, _, body := customers.do(t, url)
		if code != 429 {
			t.Fatalf("status %d", code)
		}
		decodeJSMError(t, body)
	})
}
