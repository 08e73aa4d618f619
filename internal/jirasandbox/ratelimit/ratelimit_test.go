package ratelimit

import (
	"net/http"
	"testing"
	"time"
)

func TestTakeIsPerEndpointAndRefusalsCostNothing(t *testing.T) {
	l := New()
	l.SetLimits(Limits{Endpoint: Limit{PerSecond: 1, Burst: 1}, Tenant: Limit{PerSecond: 1, Burst: 2}})
	now := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	for i, tc := range []struct {
		endpoint string
		ok       bool
		reason   string
	}{
		{"GET /a", true, ""},
		{"GET /a", false, ReasonBurst}, // the endpoint's bucket is empty; the tenant's keeps its token
		{"GET /b", true, ""},
		{"GET /c", false, ReasonTenant},
	} {
		ref, ok := l.Take(tc.endpoint, now)
		if ok != tc.ok || ref.Reason != tc.reason {
			t.Errorf("take %d %s: ok %v reason %q, want %v %q", i, tc.endpoint, ok, ref.Reason, tc.ok, tc.reason)
		}
	}
	if _, ok := l.Take("GET /c", now.Add(time.Second)); !ok {
		t.Error("a second later the tenant has a token again")
	}
}

func TestWriteHeaders(t *testing.T) {
	now := time.Date(2026, 3, 26, 15, 59, 30, 100e6, time.UTC)
	ref := Refusal{Delay: 950 * time.Millisecond, PerSecond: 0.5, Remaining: 0, Reason: ReasonBurst}
	for _, tc := range []struct {
		style Style
		want  map[string]string
	}{
		{Style{}, map[string]string{"Retry-After": "1", "X-RateLimit-Limit": "1", "X-RateLimit-Remaining": "0",
			"X-RateLimit-Reset": "2026-03-26T15:59:32Z", "RateLimit-Reason": "jira-burst-based"}},
		{Style{Headers: HeadersReset, ResetLayout: ResetMinutes}, map[string]string{"Retry-After": "",
			"X-RateLimit-Reset": "2026-03-26T15:59Z", "RateLimit-Reason": "jira-burst-based"}}, // truncated: in the past
		{Style{Headers: HeadersNone}, map[string]string{"Retry-After": "", "X-RateLimit-Reset": "", "RateLimit-Reason": ""}},
		{Style{Reason: "jira-cost-based"}, map[string]string{"RateLimit-Reason": "jira-cost-based"}},
	} {
		l := New()
		l.SetStyle(tc.style)
		h := http.Header{}
		l.WriteHeaders(h, ref, now)
		for k, v := range tc.want {
			if h.Get(k) != v {
				t.Errorf("%+v: %s = %q, want %q", tc.style, k, h.Get(k), v)
			}
		}
	}
}

// A normal answer of a limited endpoint tells the client its rate and how
// much is left, NearLimit under a fifth.
func TestUsageHeaders(t *testing.T) {
	l := New()
	l.SetLimits(Limits{Endpoint: Limit{PerSecond: 10, Burst: 10}})
	now := time.Now()
	var last http.Header
	for range 9 {
		u, ok := l.Take("POST /x", now)
		if !ok {
			t.Fatal("refused within the burst")
		}
		last = http.Header{}
		l.WriteUsage(last, u)
	}
	if last.Get("X-RateLimit-Limit") != "10" || last.Get("X-RateLimit-Remaining") != "1" || last.Get("X-RateLimit-NearLimit") != "true" {
		t.Errorf("headers %v; want limit 10, remaining 1, near limit", last)
	}
	u, _ := New().Take("POST /x", now)
	h := http.Header{}
	New().WriteUsage(h, u)
	if len(h) != 0 {
		t.Errorf("an unlimited endpoint sent %v", h)
	}
}
