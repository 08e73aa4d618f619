package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cowjacket/formjira/internal/jirasandbox"
)

func healthcheck(t *testing.T, addr string) (string, error) {
	t.Helper()
	env := map[string]string{"JIRA_URL": "https://jira.example", "JIRA_PAT": "p", "HTTP_ADDR": addr}
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"healthcheck"}, func(k string) string { return env[k] }, &out, &errOut)
	return out.String() + errOut.String(), err
}

func TestHealthcheck(t *testing.T) {
	// The real service answers: exit 0.
	h := newHarness(t, jirasandbox.Options{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	h.Env["HTTP_ADDR"] = addr
	h.Start()
	h.WaitFor("the service's /healthz", 10*time.Second, func() bool {
		r, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			r.Body.Close()
		}
		return err == nil
	})
	if out, err := healthcheck(t, addr); err != nil || !strings.Contains(out, "healthy") {
		t.Errorf("healthcheck of a running service: %v\n%s", err, out)
	}

	// Nothing listening: exit 1, promptly.
	if out, err := healthcheck(t, "127.0.0.1:1"); err == nil {
		t.Errorf("healthcheck with nothing listening passed: %s", out)
	}
	// An unhealthy answer and a hanging server: exit 1 within the timeout.
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			http.Error(w, "broken", http.StatusInternalServerError)
		}
	}))
	defer bad.Close()
	if out, err := healthcheck(t, bad.Listener.Addr().String()); err == nil || !strings.Contains(out, "500") {
		t.Errorf("healthcheck of a 500: %v %s", err, out)
	}
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	defer hang.Close()
	start := time.Now()
	if _, err := healthcheck(t, hang.Listener.Addr().String()); err == nil {
		t.Error("healthcheck of a hanging server passed")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("healthcheck took %v, want about 2s", d)
	}
}
