package ticketer_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"maps"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cowjacket/formjira/internal/config"
	"github.com/cowjacket/formjira/internal/jirasandbox"
	"github.com/cowjacket/formjira/internal/testsupport"
	"github.com/cowjacket/formjira/internal/ticketer"
	"github.com/cowjacket/formjira/internal/ticketer/ticketertest"
)

// A Jira Data Center behind a private CA: with JIRA_CA_FILE the service
// creates the tickets over verified TLS; without it, or with a JIRA_CA_FILE
// that holds no certificate, it stops at once with one line naming the
// variable.
func TestJiraBehindAPrivateCA(t *testing.T) {
	h := newHarness(t, jirasandbox.Options{})
	ca := testsupport.NewCA(t, "jira-dc")
	srv := httptest.NewUnstartedServer(h.SB)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Server(t, "127.0.0.1").TLS}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	h.Env["JIRA_URL"] = srv.URL

	for _, tt := range []struct {
		name, caFile, want string
	}{
		{"no JIRA_CA_FILE", "", "JIRA_CA_FILE: Jira's TLS certificate is not signed by a CA this host trusts"},
		{"another CA", testsupport.NewCA(t, "other").File, "JIRA_CA_FILE: Jira's TLS certificate is not signed"},
		{"not a certificate", ticketertest.Deploy("mapping.yaml"), "JIRA_CA_FILE: " + ticketertest.Deploy("mapping.yaml") + " holds no PEM certificate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := maps.Clone(h.Env)
			env["JIRA_CA_FILE"] = tt.caFile
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := ticketer.Run(ctx, func(k string) string { return env[k] }, io.Discard, io.Discard)
			var ce *config.Error
			if err == nil || !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %v, want one line starting %q", err, tt.want)
			}
			if ctx.Err() != nil {
				t.Error("the service waited instead of stopping")
			}
		})
	}

	h.Env["JIRA_CA_FILE"] = ca.File
	evs := ticketertest.SampleEvents(t)[:20]
	h.Publish(evs...)
	h.Start()
	h.WaitFor("the tickets over TLS", 20*time.Second, func() bool { return len(h.SB.Issues()) >= ticketertest.DistinctHashes(evs) })
	h.AssertOneTicketPerHash(evs)
}
