package jira

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cowjacket/formjira/internal/jirasandbox"
	"github.com/cowjacket/formjira/internal/testsupport"
)

// tlsSandbox is the sandbox behind HTTPS with a certificate of a test CA.
func tlsSandbox(t *testing.T) (*testsupport.CA, string) {
	t.Helper()
	ca := testsupport.NewCA(t, "jira")
	srv := httptest.NewUnstartedServer(jirasandbox.New(jirasandbox.Options{Email: email, APIToken: token}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Server(t, "127.0.0.1").TLS}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return ca, srv.URL
}

// A Jira behind a private CA works with that CA in CAFile (beside the
// system's), and fails verification without it, naming JIRA_CA_FILE.
func TestPrivateCA(t *testing.T) {
	ca, url := tlsSandbox(t)
	c, err := New(Options{URL: url, Email: email, APIToken: token, CAFile: ca.File})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Myself(context.Background()); err != nil {
		t.Fatalf("myself with the CA: %v", err)
	}
	c, err = New(Options{URL: url, Email: email, APIToken: token})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Myself(context.Background())
	if v, _ := Untrusted(err); v != "JIRA_CA_FILE" {
		t.Errorf("myself without the CA: %v; Untrusted names %q, want JIRA_CA_FILE", err, v)
	}
	if _, err := New(Options{URL: url, CAFile: testsupport.NewCA(t, "x").File + ".missing"}); err == nil {
		t.Error("a missing CA file was accepted")
	}
}

// A redirect within the site is followed, with the credentials; one to
// another port of the same host (which net/http would send the
// Authorization header to) or to plain http is refused before anything
// is sent there.
func TestRedirectsStayOnTheSite(t *testing.T) {
	var leaked, reached atomic.Int32
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		if r.Header.Get("Authorization") != "" {
			leaked.Add(1)
		}
	}))
	t.Cleanup(evil.Close)
	sb := jirasandbox.New(jirasandbox.Options{Email: email, APIToken: token})
	var site *httptest.Server
	site = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/moved/"):
			http.Redirect(w, r, strings.TrimPrefix(r.URL.Path, "/moved"), http.StatusTemporaryRedirect)
		case strings.HasPrefix(r.URL.Path, "/away/"):
			http.Redirect(w, r, evil.URL+strings.TrimPrefix(r.URL.Path, "/away"), http.StatusTemporaryRedirect)
		default:
			sb.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(site.Close)

	c, err := New(Options{URL: site.URL + "/moved", Email: email, APIToken: token})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Myself(context.Background()); err != nil {
		t.Errorf("a redirect within the site: %v", err)
	}
	c, err = New(Options{URL: site.URL + "/away", Email: email, APIToken: token})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Myself(context.Background())
	if !errors.Is(err, ErrRedirect) || strings.Contains(err.Error(), token) {
		t.Errorf("a redirect to another port: %v, want ErrRedirect", err)
	}
	if reached.Load() != 0 || leaked.Load() != 0 {
		t.Errorf("the other site got %d requests, %d with credentials", reached.Load(), leaked.Load())
	}
}
