package deploy_test

import (
	"bytes"
	"crypto/tls"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/cowjacket/formjira/internal/testsupport"
)

// TestNATSServerConf: deploy/nats/nats-server.conf is what nats-server
// itself parses (server.ProcessConfigFile, the code behind `nats-server
// -c`) with the variables it names set: JetStream on, TLS required with
// client certificates from NATS_SERVER_TLS_*, exactly the users capture,
// ticketer and operator with the passwords of NATS_*_PASSWORD, and none
// of them allowed to delete or purge FORMS (cmd/ticketer's
// TestLeastPrivilegeNATSPipeline proves the permissions against a running
// server). Without a variable, the server refuses to start.
func TestNATSServerConf(t *testing.T) {
	file := filepath.Join("nats", "nats-server.conf")
	ca := testsupport.NewCA(t, "nats")
	srv := ca.Server(t, "nats.nats.svc")
	env := map[string]string{
		"NATS_SERVER_TLS_CERT": srv.CertFile, "NATS_SERVER_TLS_KEY": srv.KeyFile, "NATS_SERVER_TLS_CA": ca.File,
		"NATS_CAPTURE_PASSWORD": "c-pw", "NATS_TICKETER_PASSWORD": "t-pw", "NATS_OPERATOR_PASSWORD": "o-pw",
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	o, err := server.ProcessConfigFile(file)
	if err != nil {
		t.Fatalf("nats-server -c %s: %v", file, err)
	}
	if !o.JetStream || o.StoreDir == "" {
		t.Errorf("JetStream %v, store %q: want JetStream on a persistent store", o.JetStream, o.StoreDir)
	}
	switch tc := o.TLSConfig; {
	case tc == nil:
		t.Error("no TLS: want TLS required")
	case tc.ClientAuth != tls.RequireAndVerifyClientCert || tc.ClientCAs == nil:
		t.Errorf("client certificates: %v: want required and verified against $NATS_SERVER_TLS_CA", tc.ClientAuth)
	case len(tc.Certificates) != 1 || !bytes.Equal(tc.Certificates[0].Certificate[0], srv.TLS.Certificate[0]):
		t.Error("the server's certificate is not $NATS_SERVER_TLS_CERT")
	}
	if o.NoAuthUser != "" || o.Authorization != "" {
		t.Errorf("no_auth_user %q, token set %v: every client must log in as a user", o.NoAuthUser, o.Authorization != "")
	}
	var names []string
	for _, u := range o.Users {
		names = append(names, u.Username)
		if want := env["NATS_"+strings.ToUpper(u.Username)+"_PASSWORD"]; u.Password != want {
			t.Errorf("user %s: password is not $NATS_%s_PASSWORD", u.Username, strings.ToUpper(u.Username))
		}
		p := u.Permissions
		if p == nil || p.Publish == nil || p.Subscribe == nil || len(p.Publish.Allow) == 0 || len(p.Subscribe.Allow) == 0 {
			t.Errorf("user %s: want explicit publish and subscribe allow lists", u.Username)
			continue
		}
		for _, forbidden := range []string{"$JS.API.STREAM.DELETE.FORMS", "$JS.API.STREAM.PURGE.FORMS", "$JS.API.STREAM.MSG.DELETE.FORMS"} {
			if slices.ContainsFunc(p.Publish.Allow, func(s string) bool { return matches(s, forbidden) }) &&
				!slices.ContainsFunc(p.Publish.Deny, func(s string) bool { return matches(s, forbidden) }) {
				t.Errorf("user %s may publish %s", u.Username, forbidden)
			}
		}
		if slices.Contains(p.Publish.Allow, ">") || slices.Contains(p.Subscribe.Allow, ">") {
			t.Errorf("user %s: allows everything", u.Username)
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"capture", "operator", "ticketer"}) {
		t.Errorf("users %v, want capture, operator, ticketer", names)
	}

	if err := os.Unsetenv("NATS_TICKETER_PASSWORD"); err != nil { // t.Setenv restores it
		t.Fatal(err)
	}
	if _, err := server.ProcessConfigFile(file); err == nil || !strings.Contains(err.Error(), "NATS_TICKETER_PASSWORD") {
		t.Errorf("without NATS_TICKETER_PASSWORD: %v, want a refusal naming it", err)
	}
}

// matches: NATS subject pattern pat covers subject (tokens, * and >).
func matches(pat, subject string) bool {
	p, s := strings.Split(pat, "."), strings.Split(subject, ".")
	for i, tok := range p {
		switch {
		case tok == ">":
			return len(s) > i
		case i >= len(s):
			return false
		case tok != "*" && tok != s[i]:
			return false
		}
	}
	return len(p) == len(s)
}
