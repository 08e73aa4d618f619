package capture

import (
	"context"
	"errors"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cowjacket/formjira/internal/capture/capturetest"
	"github.com/cowjacket/formjira/internal/localnats"
	"github.com/cowjacket/formjira/internal/pgcdc"
	"github.com/cowjacket/formjira/internal/stream"
)

// TestMixedCasePublicationName: a publication whose name needs quoting
// ("CowJacket") is the one streamed; pgoutput folds unquoted names to
// lower case, so it once failed on the first row with advice to drop the
// slot. A new slot is announced in the log (what streams starts there).
func TestMixedCasePublicationName(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	e := newEnv(t)
	e.Exec(`DROP PUBLICATION cowjacket`)
	e.Exec(`CREATE PUBLICATION "CowJacket" FOR TABLE public.form_submissions WITH (publish = 'insert')`)
	e = e.With(t, map[string]string{"PUBLICATION_NAME": "CowJacket"})
	r := e.Start()
	c := e.Conn()
	e.WaitStreaming(c)
	if err := insertSamples(context.Background(), c, samples(t)[:2], nil); err != nil {
		t.Fatal(err)
	}
	waitMsgs(t, e.JS(), stream.Forms, 2, 20*time.Second)
	if !strings.Contains(r.Logs.String(), "replication slot created") {
		t.Error("no log line announcing the new slot")
	}
}

// TestDatabaseNotNamedInURL: a DATABASE_URL without a database connects
// to the role's namesake; capture names that database (its slot's, the
// events' source) from the server, so a restart finds its own slot again
// instead of refusing it as another database's.
func TestDatabaseNotNamedInURL(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	e := capturetest.NewInDatabase(t, pg, capturetest.Role, "", Run)
	u, err := url.Parse(e.Vars["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	u.Path = ""
	e.Vars["DATABASE_URL"] = u.String()
	c := e.Conn()
	js := e.JS()
	for start := 1; start <= 2; start++ {
		r := e.Start()
		e.WaitStreaming(c)
		if err := insertSamples(context.Background(), c, samples(t)[start-1:start], nil); err != nil {
			t.Fatal(err)
		}
		waitMsgs(t, js, stream.Forms, uint64(start), 20*time.Second)
		r.Stop(t)
	}
	for _, m := range readAll(t, js, stream.Forms) {
		if db := m.Ev.GetSource().GetDatabase(); db != capturetest.Role {
			t.Errorf("event's source database %q, want %q", db, capturetest.Role)
		}
	}
}

// TestLostSlotStopsWithAdvice: a slot PostgreSQL invalidated
// (max_slot_wal_keep_size) can never stream again. capture stops with one
// line saying how to recover (it once retried for ever), and capture
// status says so and fails (it once showed the slot as healthy).
func TestLostSlotStopsWithAdvice(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	srv := capturetest.StartPG(t) // its own: the setting is the server's
	e := newEnvOn(t, srv, localnats.StartTB(t))
	e.Exec(`ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'`)
	e.Exec(`SELECT pg_reload_conf()`)
	r := e.Start()
	c := e.Conn()
	e.WaitStreaming(c)
	r.Stop(t)
	ctx := context.Background()
	e.Exec(`CREATE TABLE junk (x text)`)
	var status string
	for range 20 {
		e.Exec(`INSERT INTO junk SELECT repeat('x', 1000) FROM generate_series(1, 3000)`)
		e.Exec(`SELECT pg_switch_wal()`)
		e.Exec(`CHECKPOINT`)
		if err := c.QueryRow(ctx, `SELECT coalesce(wal_status, '') FROM pg_replication_slots WHERE slot_name = 'cowjacket'`).Scan(&status); err != nil {
			t.Fatal(err)
		}
		if status == "lost" {
			break
		}
	}
	if status != "lost" {
		t.Fatalf("wal_status %q after writing WAL past max_slot_wal_keep_size", status)
	}
	cfg, err := LoadConfig(e.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := Status(ctx, cfg, &out); err == nil || !strings.Contains(err.Error(), "invalidated") || !regexp.MustCompile(`wal_status\s+lost`).MatchString(out.String()) {
		t.Errorf("capture status of a lost slot: %v\n%s", err, out.String())
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = Run(rctx, e.Getenv, &out, &out)
	if !errors.Is(err, pgcdc.ErrStartup) || !strings.Contains(err.Error(), "pg_drop_replication_slot('cowjacket')") || !strings.Contains(err.Error(), "capture backfill --since") {
		t.Errorf("capture on a lost slot: %v; want it stopped with the way back", err)
	}
}
