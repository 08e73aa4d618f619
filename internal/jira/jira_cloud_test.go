package jira

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cowjacket/formjira/internal/jirasandbox"
	"github.com/cowjacket/formjira/internal/ticket"
)

// Jira Cloud's createmeta comes in pages (max 200, default 50) and, on
// Cloud, lists its fields under "fields" (also "results"; Data Center:
// "values"), with no isLast: every shape, several pages, reads whole.
func TestCreatemetaInPagesAndShapes(t *testing.T) {
	target := ticket.Target{Project: "CP", IssueType: "10003"}
	for _, list := range []string{jirasandbox.CreateMetaFields, jirasandbox.CreateMetaResults, jirasandbox.CreateMetaValues} {
		sb, url := sandbox(t, jirasandbox.Options{})
		sb.SetCreateMeta(list, jirasandbox.IssueTypesCloud, 5)
		c, _ := New(Options{URL: url, Email: email, APIToken: token, APIVersion: 3})
		meta, err := c.Meta(context.Background(), target)
		if err != nil {
			t.Fatalf("%s: %v", list, err)
		}
		if len(meta.Fields) != 22 || meta.RequestTypeField() != "customfield_10010" || len(meta.Fields["customfield_10073"].Allowed) != 10 {
			t.Errorf("%s in pages of 5: %d fields, request type field %q", list, len(meta.Fields), meta.RequestTypeField())
		}
		pages := 0
		for _, r := range sb.Requests() {
			if strings.Contains(r.Path, "/createmeta/CP/issuetypes/10003") {
				pages++
			}
		}
		if pages < 5 {
			t.Errorf("%s: %d createmeta requests, want the pages of 5 read one by one", list, pages)
		}
	}
}

// 401 and an anonymous answer are the credentials; 403 a permission, named;
// JSM's error shape is read; a 429 without Retry-After waits for
// X-RateLimit-Reset.
func TestErrorsAsJiraCloudSendsThem(t *testing.T) {
	ctx := context.Background()
	t.Run("anonymous 200", func(t *testing.T) {
		_, url := sandbox(t, jirasandbox.Options{AnonymousFallback: true})
		c, _ := New(Options{URL: url, Email: email, APIToken: "wrong"})
		if _, err := c.Myself(ctx); !errors.Is(err, ErrAuth) || errors.Is(err, ErrPermission) {
			t.Errorf("myself served to an anonymous user: %v, want ErrAuth", err)
		}
		if _, err := c.FindByLabels(ctx, []string{"cowjacket-x"}); !errors.Is(err, ErrAuth) {
			t.Errorf("search served to an anonymous user: %v, want ErrAuth (not an empty answer)", err)
		}
	})
	t.Run("403 names the permission", func(t *testing.T) {
		sb, url := sandbox(t, jirasandbox.Options{})
		sb.SetDenyCreate(jirasandbox.DenyCreate403)
		c, _ := New(Options{URL: url, Email: email, APIToken: token})
		_, err := c.Create(ctx, fields("Ann", "Finance", "cowjacket-a"))
		if !errors.Is(err, ErrPermission) || errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "Create issues") {
			t.Errorf("403: %v; want ErrPermission naming Create issues", err)
		}
	})
	t.Run("JSM error shape", func(t *testing.T) {
		sb, url := sandbox(t, jirasandbox.Options{})
		sb.SetForbidCreateCustomer(true)
		c, _ := New(Options{URL: url, Email: email, APIToken: token})
		_, err := c.CreateCustomer(ctx, "new@example.com", "New")
		var ae *APIError
		if !errors.As(err, &ae) || !errors.Is(err, ErrPermission) || len(ae.Messages) == 0 || !strings.Contains(err.Error(), "Jira Administrators") {
			t.Errorf("JSM 403: %v; want its errorMessage read and the permission named", err)
		}
	})
	t.Run("429 with only X-RateLimit-Reset", func(t *testing.T) {
		for _, layout := range []string{jirasandbox.ResetLayoutSeconds, jirasandbox.ResetLayoutMinutes} {
			sb, url := sandbox(t, jirasandbox.Options{RatePerSecond: 0.5, Burst: 1})
			sb.SetRateLimitHeaders(jirasandbox.RateLimitResetOnly, layout)
			c, _ := New(Options{URL: url, Email: email, APIToken: token})
			_, _ = c.Create(ctx, fields("Ann", "Finance", "cowjacket-1"))
			_, err := c.Create(jiraPaced(ctx), fields("Bob", "Finance", "cowjacket-2"))
			if !errors.Is(err, ErrRetryable) || MaybeCreated(err) {
				t.Fatalf("%s: %v, want a 429", layout, err)
			}
			// Seconds layout: the next whole second with a token (≤ 2 s).
			// Minutes: truncated to the minute, possibly past: 0 is right then.
			ra := RetryAfter(err)
			if layout == jirasandbox.ResetLayoutSeconds && (ra <= 0 || ra > 3*time.Second) {
				t.Errorf("%s: retry after %v, want the reset time", layout, ra)
			}
			if ra < 0 || ra > time.Minute {
				t.Errorf("%s: retry after %v", layout, ra)
			}
		}
	})
}

// retryAfter reads every documented way Jira says when to come back, at a
// fixed now (the end-to-end case above cannot pin the minutes layout: the
// truncated time may already be past).
func TestRetryAfterHeaders(t *testing.T) {
	now := time.Date(2026, 3, 26, 16, 0, 30, 0, time.UTC)
	for _, tc := range []struct {
		h    map[string]string
		want time.Duration
	}{
		{map[string]string{"Retry-After": "7"}, 7 * time.Second},
		{map[string]string{"Retry-After": "Thu, 26 Mar 2026 16:00:40 GMT"}, 10 * time.Second},
		{map[string]string{"X-RateLimit-Reset": "2026-03-26T16:00:45Z"}, 15 * time.Second},
		{map[string]string{"X-RateLimit-Reset": "2026-03-26T16:00:45.500Z"}, 15500 * time.Millisecond},
		{map[string]string{"X-RateLimit-Reset": "2026-03-26T16:01Z"}, 30 * time.Second},
		{map[string]string{"X-RateLimit-Reset": "2026-03-26T16:00Z"}, 0}, // truncated into the past
		{map[string]string{"Retry-After": "3", "X-RateLimit-Reset": "2026-03-26T16:01Z"}, 3 * time.Second},
		{map[string]string{"X-RateLimit-Reset": "soon"}, 0},
		{nil, 0},
	} {
		h := http.Header{}
		for k, v := range tc.h {
			h.Set(k, v)
		}
		if got := retryAfter(h, now); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.h, got, tc.want)
		}
	}
}

// jiraPaced skips the client's own pacer (it would wait out the 429 the
// test wants to see).
func jiraPaced(ctx context.Context) context.Context { return Paced(ctx) }
