package jirasandbox_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	jirav2 "github.com/ctreminiom/go-atlassian/v2/jira/v2"
	"github.com/ctreminiom/go-atlassian/v2/pkg/infra/models"

	"github.com/cowjacket/formjira/internal/jirasandbox"
)

// TestOutage: while an outage lasts every API call fails the same way —
// myself and serverInfo too — nothing is created, every call is still
// logged, and the sandbox's own pages keep working; it ends when cleared.
func TestOutage(t *testing.T) {
	row := sara(t)
	for _, tc := range []struct {
		mode       jirasandbox.Outage
		status     int // as logged; 0 = dropped
		retryAfter time.Duration
	}{
		{jirasandbox.Outage503, 503, 30 * time.Second},
		{jirasandbox.Outage503, 503, 0},
		{jirasandbox.Outage502, 502, 0},
		{jirasandbox.OutageDrop, 0, 0},
	} {
		t.Run(string(tc.mode)+"/"+tc.retryAfter.String(), func(t *testing.T) {
			sb, url := start(t, jirasandbox.Options{})
			// No keep-alive: a dropped connection is not retried by the
			// transport, so each call reaches the sandbox exactly once.
			hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			c, err := jirav2.New(hc, url)
			if err != nil {
				t.Fatal(err)
			}
			c.Auth.SetBasicAuth(testEmail, testToken)
			ctx := context.Background()
			sb.SetOutageRetryAfter(tc.retryAfter)
			sb.SetOutage(tc.mode)

			calls := []func() (*models.ResponseScheme, error){
				func() (*models.ResponseScheme, error) { _, r, err := c.MySelf.Details(ctx, nil); return r, err },
				func() (*models.ResponseScheme, error) { _, r, err := c.Server.Info(ctx); return r, err },
				func() (*models.ResponseScheme, error) {
					_, r, err := c.Issue.Create(ctx, &models.IssueSchemeV2{}, rawCustomFields(t, row.rawFields(false)))
					return r, err
				},
				func() (*models.ResponseScheme, error) {
					_, r, err := smClient(t, url).Request.Create(ctx, requestPayload(t, row, ""))
					return r, err
				},
			}
			for i, call := range calls {
				res, err := call()
				if err == nil {
					t.Fatalf("call %d succeeded during the outage", i)
				}
				if tc.status == 0 {
					continue // no answer: a transport error
				}
				if res == nil || res.Code != tc.status {
					t.Fatalf("call %d: %v, want %d", i, err, tc.status)
				}
				if got := res.Header.Get("Retry-After"); (tc.retryAfter > 0) != (got == "30") {
					t.Errorf("Retry-After %q", got)
				}
				if strings.HasPrefix(strings.TrimSpace(res.Bytes.String()), "{") {
					t.Errorf("an outage answers from the edge, not in JSON: %s", res.Bytes.String())
				}
			}
			if page, code := httpDo(t, http.MethodGet, url+"/sandbox/", "", nil); code != 200 || !strings.Contains(string(page), "0 tickets") {
				t.Errorf("sandbox page during the outage: %d", code)
			}
			reqs := sb.Requests()
			if len(reqs) != len(calls) {
				t.Fatalf("%d requests logged, want %d: %+v", len(reqs), len(calls), reqs)
			}
			for _, r := range reqs {
				if r.Outage != tc.mode || r.Status != tc.status || r.RetryAfter != tc.retryAfter {
					t.Errorf("logged %+v", r)
				}
			}
			if n := sb.CountStatus(tc.status); n != len(calls) {
				t.Errorf("CountStatus(%d) = %d", tc.status, n)
			}
			if len(sb.Issues()) != 0 {
				t.Error("an issue was created during the outage")
			}

			sb.SetOutage(jirasandbox.OutageNone)
			if _, _, err := c.MySelf.Details(ctx, nil); err != nil {
				t.Errorf("after the outage: %v", err)
			}
			if r := sb.Requests()[len(calls)]; r.Outage != "" || r.Status != 200 {
				t.Errorf("after the outage logged %+v", r)
			}
		})
	}
}
