package localpg

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cowjacket/formjira/internal/testsupport"
)

// With TLS on, a TLS role connects only over verified TLS with its client
// certificate and password; the superuser still connects as before.
func TestTLSRoles(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL server")
	}
	ca := testsupport.NewCA(t, "pg")
	srvCert := ca.Server(t, "127.0.0.1")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Start(ctx, Options{TLS: &TLS{CertPEM: srvCert.CertPEM, KeyPEM: srvCert.KeyPEM, CAPEM: ca.PEM, Roles: []string{"tlsrole"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop() })
	admin := connect(t, s.DSN("postgres"))
	if _, err := admin.Exec(ctx, "CREATE ROLE tlsrole LOGIN PASSWORD 'pw-of-tlsrole'"); err != nil {
		t.Fatal(err)
	}
	client := ca.Client(t, "tlsrole")
	other := ca.Client(t, "someoneelse")
	stranger := testsupport.NewCA(t, "stranger")
	good := s.TLSDSN("postgres", "tlsrole", "pw-of-tlsrole", ca.File, client.CertFile, client.KeyFile)
	for _, tt := range []struct {
		name, dsn, want string
	}{
		{"verified TLS, certificate and password", good, ""},
		{"no TLS", strings.Replace(s.DSN("postgres"), "postgres@", "tlsrole:pw-of-tlsrole@", 1), "no encryption"},
		{"wrong password", strings.Replace(good, "pw-of-tlsrole", "nope", 1), "password authentication failed"},
		{"certificate of another name", s.TLSDSN("postgres", "tlsrole", "pw-of-tlsrole", ca.File, other.CertFile, other.KeyFile), "authentication failed"}, // PostgreSQL does not say which check failed
		{"server not trusted", s.TLSDSN("postgres", "tlsrole", "pw-of-tlsrole", stranger.File, client.CertFile, client.KeyFile), "x509: certificate signed by unknown authority"},
		{"host name not in the certificate", strings.Replace(good, "127.0.0.1", "localhost", 1), "wanted to match localhost"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := pgx.Connect(ctx, tt.dsn)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				var ssl bool
				if err := c.QueryRow(ctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl); err != nil || !ssl {
					t.Errorf("ssl %v (%v)", ssl, err)
				}
				c.Close(ctx)
				return
			}
			if err == nil {
				c.Close(ctx)
				t.Fatalf("connected, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}
