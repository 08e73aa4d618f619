package main

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cowjacket/formjira/internal/capture/capturetest"
	"github.com/cowjacket/formjira/internal/config"
)

// capture streams as the least-privilege role of deploy/postgres, not a
// superuser, over TLS that verified the server: its replication session
// and its SQL sessions are the role's and encrypted.
func TestCaptureRunsAsTheRoleOverVerifiedTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	e := newEnv(t)
	dsn, _ := url.Parse(e.Vars["DATABASE_URL"])
	if dsn.User.Username() != capturetest.Role || dsn.Query().Get("sslmode") != "verify-full" || dsn.Query().Get("sslcert") == "" {
		t.Fatalf("DATABASE_URL is not the role over verified TLS with a client certificate: %s", config.Redact(dsn.String()))
	}
	e.Start()
	c := e.Conn()
	e.WaitStreaming(c)
	rows, err := c.Query(context.Background(), `SELECT a.backend_type, a.usename, r.rolsuper, s.ssl
		FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) JOIN pg_roles r ON r.rolname = a.usename
		WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND a.usename <> 'postgres'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	sessions := 0
	walsender := false
	for rows.Next() {
		var kind, user string
		var super, ssl bool
		if err := rows.Scan(&kind, &user, &super, &ssl); err != nil {
			t.Fatal(err)
		}
		sessions++
		walsender = walsender || kind == "walsender"
		if user != capturetest.Role || super || !ssl {
			t.Errorf("%s session of %s: superuser %v, TLS %v", kind, user, super, ssl)
		}
	}
	if sessions == 0 || !walsender {
		t.Errorf("%d sessions of capture, walsender among them %v", sessions, walsender)
	}
}

// A server certificate that sslrootcert does not vouch for, a host name it
// is not for, a role without SELECT or a missing publication the role may
// not create: each stops capture at once with one line saying what to fix.
func TestPostgresTLSAndPrivilegeRefusals(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	e := newEnv(t)
	good := e.Vars["DATABASE_URL"]
	wrongCA := trustingAStranger(t, good)
	wrongHost := strings.Replace(good, "@127.0.0.1:", "@localhost:", 1)

	for _, tt := range []struct {
		name, dsn, setup, want, undo string
	}{
		{"server certificate of another CA", wrongCA, "", "DATABASE_URL: the server's TLS certificate is not signed by the CA of sslrootcert", ""},
		{"host name not in the certificate", wrongHost, "", "DATABASE_URL: the server's TLS certificate is not for the host name in the URL", ""},
		{"no SELECT on the table", good, "REVOKE SELECT ON public.form_submissions FROM " + capturetest.Role,
			"role cowjacket_capture lacks SELECT on public.form_submissions: GRANT SELECT ON \"public\".\"form_submissions\" TO cowjacket_capture",
			"GRANT SELECT ON public.form_submissions TO " + capturetest.Role},
		{"publication missing", good, "DROP PUBLICATION cowjacket",
			"publication cowjacket does not exist, and only the owner of public.form_submissions (postgres) may create it, not role cowjacket_capture", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != "" {
				e.Exec(tt.setup)
			}
			if tt.undo != "" {
				defer e.Exec(tt.undo)
			}
			sub := e.With(t, map[string]string{"DATABASE_URL": tt.dsn})
			begin := time.Now()
			_, err := run(sub)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %v, want one line containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), capturetest.RolePassword) {
				t.Errorf("the error shows the password: %v", err)
			}
			if d := time.Since(begin); d > 5*time.Second {
				t.Errorf("took %v: a refusal must not be retried", d)
			}
			var ce *config.Error
			if strings.HasPrefix(tt.want, "DATABASE_URL") && !errors.As(err, &ce) {
				t.Errorf("%T is not a config.Error", err)
			}
		})
	}
}
