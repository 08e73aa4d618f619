package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cowjacket/formjira/internal/capture"
	"github.com/cowjacket/formjira/internal/localpg"
	"github.com/cowjacket/formjira/internal/stream"
)

// Rows inserted before the slot existed reach FORMS through backfill, with
// the same hashes; running it again adds nothing, and a capture started
// afterwards does not add them again either.
func TestBackfill(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	e := newEnv(t)
	c := e.Conn()
	if err := insertSamples(context.Background(), c, samples(t), nil); err != nil {
		t.Fatal(err)
	}
	out, err := run(e, "backfill")
	if err != nil {
		t.Fatal(err)
	}
	if want := "200 rows read, 197 published, 3 duplicates collapsed, 0 dead-lettered"; !strings.Contains(out, want) {
		t.Errorf("backfill printed %q, want %q", out, want)
	}
	js := e.JS()
	waitMsgs(t, js, stream.Forms, 197, 5*time.Second)
	for _, m := range readAll(t, js, stream.Forms) {
		if m.Ev.GetSource().GetOrigin() != "backfill" {
			t.Fatalf("origin %q", m.Ev.GetSource().GetOrigin())
		}
	}
	out, err = run(e, "backfill")
	if err != nil {
		t.Fatal(err)
	}
	if want := "200 rows read, 0 published, 200 duplicates collapsed"; !strings.Contains(out, want) {
		t.Errorf("second backfill printed %q, want %q", out, want)
	}
	out, err = run(e, "backfill", "--since", "2025-10-15")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, " 0 published") || strings.Contains(out, "200 rows read") {
		t.Errorf("backfill --since printed %q, want a subset, nothing new", out)
	}

	// The stream and the backfill agree on hashes: a capture started now and
	// fed the same rows again (as a re-insert) collapses them too.
	e.Start()
	e.WaitStreaming(c)
	if err := insertSamples(context.Background(), c, samples(t)[:5], nil); err != nil {
		t.Fatal(err)
	}
	waitMsgs(t, js, stream.Forms, 197, 10*time.Second)

	out, err = run(e, "status")
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	for _, want := range []string{"slot cowjacket", "active, pid", "confirmed_flush_lsn", "lag", "retained WAL", "publication cowjacket", "public.form_submissions", "stream FORMS", "197 messages"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
}

func TestStartupChecks(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	e := newEnv(t)
	e.Exec("CREATE ROLE norepl LOGIN NOREPLICATION")
	t.Cleanup(func() {
		c, err := pg.Connect(context.Background(), "postgres")
		if err == nil {
			c.Exec(context.Background(), "DROP ROLE IF EXISTS norepl")
			c.Close(context.Background())
		}
	})
	noRepl := strings.Replace(e.DSN, "postgres@", "norepl@", 1)

	tests := []struct {
		name string
		vars map[string]string
		want string
	}{
		{"missing DATABASE_URL", map[string]string{"DATABASE_URL": ""}, "DATABASE_URL: required"},
		{"bad DATABASE_URL", map[string]string{"DATABASE_URL": "mysql://x"}, "DATABASE_URL"},
		{"bad MAX_IN_FLIGHT", map[string]string{"MAX_IN_FLIGHT": "0"}, "MAX_IN_FLIGHT"},
		{"MAX_IN_FLIGHT too large", map[string]string{"MAX_IN_FLIGHT": "10000000"}, "MAX_IN_FLIGHT: at most 65536"},
		{"HEARTBEAT_INTERVAL too short", map[string]string{"HEARTBEAT_INTERVAL": "1ns"}, "HEARTBEAT_INTERVAL: at least 100ms"},
		{"STATUS_INTERVAL too long", map[string]string{"STATUS_INTERVAL": "1m"}, "STATUS_INTERVAL"},
		{"missing table", map[string]string{"FORM_TABLE": "public.nope"}, "table public.nope does not exist: create it (deploy/postgres/01-schema.sql)"},
		{"SLOT_NAME PostgreSQL refuses", map[string]string{"SLOT_NAME": "cow-jacket"}, `SLOT_NAME: want lower-case letters, digits and underscores (at most 63), got "cow-jacket"`},
		{"HASH_FIELDS typo", map[string]string{"HASH_FIELDS": "newusername,emial"}, `HASH_FIELDS: column "emial" is not in public.form_submissions`},
		{"HASH_FIELDS with an empty name", map[string]string{"HASH_FIELDS": "emailaddress|"}, `HASH_FIELDS: "emailaddress|": an empty name`},
		{"HASH_FIELDS naming a column twice", map[string]string{"HASH_FIELDS": "emailaddress,emailaddress|email"}, `HASH_FIELDS: "emailaddress|email": column "emailaddress" named twice`},
		{"HASH_FIELDS with an old name only", map[string]string{"HASH_FIELDS": "newusername,gone|alsogone"}, `HASH_FIELDS: column "gone|alsogone" is not in public.form_submissions`},
		{"role without REPLICATION", map[string]string{"DATABASE_URL": noRepl}, "ALTER ROLE norepl REPLICATION"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := e.With(t, tt.vars)
			_, err := run(sub)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one naming %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}

	t.Run("wal_level replica", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		srv, err := localpg.Start(ctx, localpg.Options{Settings: map[string]string{"wal_level": "replica"}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Stop() })
		sub := &env{T: t, Vars: map[string]string{"DATABASE_URL": srv.DSN("postgres"), "HTTP_ADDR": "off"}}
		_, err = run(sub)
		if err == nil || !strings.Contains(err.Error(), "set wal_level=logical in postgresql.conf and restart") {
			t.Fatalf("error %v, want the wal_level fix", err)
		}
	})

	t.Run("help", func(t *testing.T) {
		sub := &env{T: t, Vars: map[string]string{"DATABASE_URL": "postgres://u:hunter2@h/db"}}
		out, err := run(sub, "--help")
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range capture.Vars {
			if !strings.Contains(out, v.Name) {
				t.Errorf("--help lacks %s", v.Name)
			}
			if v.Default != "" && !strings.Contains(out, v.Default) {
				t.Errorf("--help lacks the default of %s (%s)", v.Name, v.Default)
			}
		}
		if strings.Contains(out, "hunter2") {
			t.Error("--help shows a secret")
		}
	})
}
