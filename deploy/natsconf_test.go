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
	"sigs.k8s.io/yaml"

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
			if slices.ContainsFunc(p.Publish.Allow, func(s string) bool { return server.SubjectMatchesFilter(forbidden, s) }) &&
				!slices.ContainsFunc(p.Publish.Deny, func(s string) bool { return server.SubjectMatchesFilter(forbidden, s) }) {
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

// TestNATSHelmValuesSecurity: the Helm values run the cluster as
// nats-server.conf runs a server: TLS on the client port with client
// certificates verified against the CA Secret, TLS between the servers,
// and exactly the users and permissions of nats-server.conf, their
// passwords from a Secret through the container's environment.
func TestNATSHelmValuesSecurity(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("nats", "helm-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var v natsChartValues
	if err := yaml.UnmarshalStrict(b, &v); err != nil {
		t.Fatal(err)
	}
	c := v.Config
	if !v.TLSCA.Enabled || v.TLSCA.SecretName == "" || !c.Nats.TLS.Enabled || c.Nats.TLS.SecretName == "" || c.Nats.TLS.Merge["verify"] != true {
		t.Errorf("client port: tlsCA %+v, tls %+v: want TLS with verified client certificates from Secrets", v.TLSCA, c.Nats.TLS)
	}
	if !c.Cluster.TLS.Enabled || c.Cluster.TLS.SecretName == "" {
		t.Errorf("routes: tls %+v: want TLS between the servers", c.Cluster.TLS)
	}
	conf := serverConf(t)
	if len(c.Merge.Authorization.Users) != len(conf.Users) {
		t.Fatalf("%d users in the values, %d in nats-server.conf", len(c.Merge.Authorization.Users), len(conf.Users))
	}
	for i, u := range c.Merge.Authorization.Users {
		want := conf.Users[i]
		pw := "NATS_" + strings.ToUpper(u.User) + "_PASSWORD"
		p := u.Permissions
		switch {
		case u.User != want.Username:
			t.Errorf("user %d: %s, nats-server.conf has %s", i, u.User, want.Username)
		case u.Password != "<< $"+pw+" >>":
			t.Errorf("user %s: password %q, want << $%s >>", u.User, u.Password, pw)
		case !slices.Equal(p.Publish.Allow, want.Permissions.Publish.Allow) || !slices.Equal(p.Publish.Deny, want.Permissions.Publish.Deny) ||
			!slices.Equal(p.Subscribe.Allow, want.Permissions.Subscribe.Allow):
			t.Errorf("user %s: permissions differ from nats-server.conf's", u.User)
		}
		if e, ok := v.Container.Env[pw]; !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			t.Errorf("container.env.%s: want it from a Secret (secretKeyRef), got %+v", pw, e)
		}
	}
}

// serverConf is nats-server.conf as the server reads it, with test files
// and passwords for the variables it names.
func serverConf(t *testing.T) *server.Options {
	t.Helper()
	ca := testsupport.NewCA(t, "nats")
	srv := ca.Server(t, "nats.nats.svc")
	for k, v := range map[string]string{
		"NATS_SERVER_TLS_CERT": srv.CertFile, "NATS_SERVER_TLS_KEY": srv.KeyFile, "NATS_SERVER_TLS_CA": ca.File,
		"NATS_CAPTURE_PASSWORD": "c", "NATS_TICKETER_PASSWORD": "t", "NATS_OPERATOR_PASSWORD": "o",
	} {
		t.Setenv(k, v)
	}
	o, err := server.ProcessConfigFile(filepath.Join("nats", "nats-server.conf"))
	if err != nil {
		t.Fatal(err)
	}
	return o
}
