package alert

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cowjacket/formjira/internal/testsupport"
)

func TestWebhookReceivesSlackCompatibleJSON(t *testing.T) {
	var mu sync.Mutex
	var got []WebhookPayload
	var contentType string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p WebhookPayload
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		got, contentType = append(got, p), r.Header.Get("Content-Type")
		mu.Unlock()
	}))
	defer srv.Close()

	cfg := fastConfig()
	cfg.WebhookURL = srv.URL + "/services/T0/B0/TOKEN"
	a := New(cfg, nil) // the webhook sink comes from cfg
	runAlerter(t, a)
	a.Notify(JiraAuthFailed(401, "Unauthorized: token revoked"))

	testsupport.WaitFor(t, "the alerter's state", 2*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 1 })
	mu.Lock()
	defer mu.Unlock()
	p := got[0]
	if contentType != "application/json" {
		t.Errorf("Content-Type = %q", contentType)
	}
	if !strings.HasPrefix(p.Text, "[cowjacket] Jira authentication failing (401)\n") || !strings.Contains(p.Text, "token revoked") {
		t.Errorf("text = %q", p.Text)
	}
	if len(p.Alerts) != 1 || p.Alerts[0].Kind != JiraAuth || p.Alerts[0].Fields["status"] != "401" || p.Alerts[0].Count != 1 {
		t.Errorf("alerts = %+v", p.Alerts)
	}
}

func TestWebhookRetriesServerErrorsButNotClientErrors(t *testing.T) {
	tests := []struct {
		status    int
		wantCalls int32
	}{
		{http.StatusServiceUnavailable, 4}, // SendAttempts
		{http.StatusTooManyRequests, 4},
		{http.StatusNotFound, 1}, // wrong URL: retrying cannot help
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				http.Error(w, "nope", tt.status)
			}))
			defer srv.Close()
			logger, logs := testLogger()
			a := New(fastConfig(), logger, NewWebhookSink(srv.URL+"/SECRETTOKEN", srv.Client()))
			runAlerter(t, a)
			a.Notify(Alert{Kind: JiraUnreachable})
			testsupport.WaitFor(t, "the alerter's state", 3*time.Second, func() bool { return a.Stats().Failed == 1 })
			if got := calls.Load(); got != tt.wantCalls {
				t.Errorf("%d calls, want %d", got, tt.wantCalls)
			}
			if strings.Contains(logs.String(), "SECRETTOKEN") {
				t.Errorf("log leaks the webhook token:\n%s", logs)
			}
		})
	}
}

func TestWebhookErrorHidesURL(t *testing.T) {
	addr := testsupport.FreeAddr(t)
	err := NewWebhookSink("http://"+addr+"/hooks/SECRETTOKEN", nil).Send(context.Background(), "s", "b", nil)
	if err == nil || strings.Contains(err.Error(), "SECRETTOKEN") {
		t.Fatalf("err = %v; want an error without the token", err)
	}
	if errors.Is(err, ErrPermanent) {
		t.Errorf("connection refused should be retryable: %v", err)
	}
}
