package capture

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/cowjacket/formjira/internal/capture/capturetest"
	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/localnats"
	"github.com/cowjacket/formjira/internal/pgcdc"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/testsupport"
)

// load inserts n distinct rows (one transaction each) in the background and
// reports how many are in.
func load(e *env, n int) (inserted func() int, done chan error) {
	e.T.Helper()
	c := e.Conn()
	rows := many(e.T, n)
	var count atomicInt
	done = make(chan error, 1)
	go func() {
		ctx := context.Background()
		for i := range rows {
			if err := insertSamples(ctx, c, rows[i:i+1], func(int) string { return fmt.Sprintf("load row %d", i) }); err != nil {
				done <- err
				return
			}
			count.add(1)
		}
		done <- nil
	}()
	return count.get, done
}

// Abandoning capture (no drain, no final status: kill -9) in the middle of
// a 5,000-row load and starting it again loses nothing and duplicates
// nothing.
func TestAbandonMidLoadThenRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	const n = 5000
	e := newEnv(t)
	e.Vars["MAX_IN_FLIGHT"] = "256"
	r := e.Start()
	c := e.Conn()
	e.WaitStreaming(c)
	inserted, done := load(e, n)
	testsupport.WaitFor(t, "a third of the load", 60*time.Second, func() bool { return inserted() >= n/3 })
	r.Abandon(t)
	t.Logf("abandoned after %d rows inserted", inserted())
	time.Sleep(500 * time.Millisecond) // rows keep arriving while no capture runs
	e.Start()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	js := e.JS()
	waitMsgs(t, js, stream.Forms, n, 90*time.Second)
	seen := map[string]bool{}
	for _, m := range readAll(t, js, stream.Forms) {
		id := pkOf(m.Ev)
		if seen[id] {
			t.Errorf("row id %s twice", id)
		}
		seen[id] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct rows in FORMS, want %d", len(seen), n)
	}
}

// With nats-server down for 10 s during a load, every row still arrives, and
// the slot is never confirmed past a row JetStream had not stored.
func TestNATSOutageDuringLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	const n = 2000
	e := newEnv(t)
	e.Vars["MAX_IN_FLIGHT"] = "100"
	e.Start()
	c := e.Conn()
	e.WaitStreaming(c)
	js := e.JS()
	inserted, done := load(e, n)
	testsupport.WaitFor(t, "some rows in FORMS", 30*time.Second, func() bool { return streamMsgs(context.Background(), js, stream.Forms) >= 200 })

	down := time.Now()
	e.NATS.Shutdown()
	t.Logf("nats down with %d rows inserted", inserted())
	// Acks already on the wire may still confirm for a moment; after that
	// the position must stand still until nats is back.
	time.Sleep(1500 * time.Millisecond)
	frozen := e.SlotLSN(c)
	var maxSeen pglogrepl.LSN
	for time.Since(down) < 10*time.Second {
		l := e.SlotLSN(c)
		maxSeen = max(maxSeen, l)
		if l != frozen {
			t.Errorf("confirmed_flush_lsn moved from %s to %s while nats was down", frozen, l)
		}
		time.Sleep(100 * time.Millisecond)
	}
	up := time.Now()
	if err := e.NATS.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitMsgs(t, js, stream.Forms, n, 90*time.Second)

	seen := map[string]bool{}
	for _, m := range readAll(t, js, stream.Forms) {
		id := pkOf(m.Ev)
		if seen[id] {
			t.Errorf("row id %s twice", id)
		}
		seen[id] = true
		// A row first stored after the outage was not in JetStream while the
		// slot stood at maxSeen: its commit must lie beyond that position.
		if m.Time.After(up) {
			commit, _ := pglogrepl.ParseLSN(m.Ev.GetSource().GetCommitLsn())
			if commit < maxSeen {
				t.Errorf("row %s (commit %s) stored after the outage, but the slot was confirmed to %s during it", id, commit, maxSeen)
			}
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct rows, want %d", len(seen), n)
	}
}

// A second capture on the same slot waits as a standby and takes over
// within seconds of the first stopping.
func TestStandbyTakesOver(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	e := newEnv(t)
	first := e.Start()
	c := e.Conn()
	e.WaitStreaming(c)
	s1, err := pgcdc.ReadSlot(context.Background(), c, "cowjacket")
	if err != nil {
		t.Fatal(err)
	}
	second := e.Start()
	testsupport.WaitFor(t, "second capture to report standby", 10*time.Second, func() bool {
		return strings.Contains(second.Logs.String(), "standby")
	})
	ctx := context.Background()
	s := samples(t)
	if err := insertSamples(ctx, c, s[:1], nil); err != nil {
		t.Fatal(err)
	}
	js := e.JS()
	waitMsgs(t, js, stream.Forms, 1, 10*time.Second)

	first.Stop(t)
	stopped := time.Now()
	testsupport.WaitFor(t, "standby to take the slot", 10*time.Second, func() bool {
		s2, err := pgcdc.ReadSlot(ctx, c, "cowjacket")
		return err == nil && s2.Active && s2.ActivePID != s1.ActivePID
	})
	t.Logf("standby took over %v after the first stopped", time.Since(stopped).Round(time.Millisecond))
	if err := insertSamples(ctx, c, s[1:2], nil); err != nil {
		t.Fatal(err)
	}
	waitMsgs(t, js, stream.Forms, 2, 10*time.Second)
	if n := strings.Count(second.Logs.String(), `"msg":"standby`); n != 1 {
		t.Errorf("standby logged %d times, want once", n)
	}
}

// loadThroughOutages inserts n rows, one transaction each, with Comments
// "<prefix> row i", riding out a database that goes away: a failed insert
// is retried (same values) on a new connection. A retried insert whose
// first attempt did commit leaves two rows with one hash, which must still
// be one message.
func loadThroughOutages(e *env, n int, prefix string) (inserted func() int, done chan error) {
	e.T.Helper()
	rows := many(e.T, n)
	var count atomicInt
	done = make(chan error, 1)
	go func() {
		ctx := context.Background()
		var c *pgx.Conn
		defer func() {
			if c != nil {
				c.Close(ctx)
			}
		}()
		giveUp := time.Now().Add(90 * time.Second)
		for i := 0; i < len(rows); {
			if c == nil {
				cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				var err error
				c, err = pgx.Connect(cctx, e.DSN)
				cancel()
				if err != nil {
					c = nil
					if time.Now().After(giveUp) {
						done <- fmt.Errorf("database unreachable: %w", err)
						return
					}
					time.Sleep(100 * time.Millisecond)
					continue
				}
			}
			err := insertSamples(ctx, c, rows[i:i+1], func(int) string { return fmt.Sprintf("%s row %d", prefix, i) })
			if err != nil {
				c.Close(ctx)
				c = nil
				continue
			}
			i++
			count.add(1)
		}
		done <- nil
	}()
	return count.get, done
}

// Postgres killed (SIGKILL, crash recovery on restart) in the middle of a
// load: capture reconnects with backoff, resumes from the slot's confirmed
// position, and every committed row is in FORMS exactly once.
func TestPostgresKilledDuringLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	const n = 1500
	srv := capturetest.StartPG(t) // ours alone: killing the package's server would break other tests
	e := newEnvOn(t, srv, localnats.StartTB(t))
	addr := testsupport.FreeAddr(t)
	e.Vars["HTTP_ADDR"] = addr
	e.Vars["MAX_IN_FLIGHT"] = "128"
	r := e.Start()
	c := e.Conn()
	e.WaitStreaming(c)
	c.Close(context.Background()) // dies with the server anyway

	inserted, done := loadThroughOutages(e, n, "kill")
	testsupport.WaitFor(t, "a third of the load", 60*time.Second, func() bool { return inserted() >= n/3 })
	srv.Kill()
	t.Logf("postgres killed after %d rows inserted", inserted())
	testsupport.WaitFor(t, "capture to notice the lost session", 10*time.Second, func() bool {
		return strings.Contains(r.Logs.String(), "replication session lost; reconnecting")
	})
	if code, body := get(t, addr, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "PostgreSQL") {
		t.Errorf("/readyz with PostgreSQL down: %d %q, want 503 naming PostgreSQL", code, body)
	}
	time.Sleep(time.Second) // a few reconnect attempts fail meanwhile
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Every distinct row the table holds (by Comments, hence by hash).
	c = e.Conn()
	var distinct int
	if err := c.QueryRow(context.Background(), `SELECT count(DISTINCT "Comments") FROM public.form_submissions`).Scan(&distinct); err != nil {
		t.Fatal(err)
	}
	if distinct != n {
		t.Fatalf("table holds %d distinct rows, want %d", distinct, n)
	}
	js := e.JS()
	waitMsgs(t, js, stream.Forms, uint64(n), 60*time.Second)
	seen := map[string]bool{}
	for _, m := range readAll(t, js, stream.Forms) {
		h := m.Ev.GetHash()
		if seen[h] {
			t.Errorf("hash %s twice", h)
		}
		seen[h] = true
		if !strings.HasPrefix(form.String(m.Ev, "Comments"), "kill row ") {
			t.Errorf("seq %d: unexpected row %q", m.Seq, form.String(m.Ev, "Comments"))
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct hashes in FORMS, want %d", len(seen), n)
	}

	// Reconnected (with backoff: the log names it), counted, and streaming
	// again from the confirmed position, which then moves on to the end.
	logs := r.Logs.String()
	if !strings.Contains(logs, `"backoff"`) {
		t.Errorf("reconnect log does not name the backoff:\n%s", logs)
	}
	if got := strings.Count(logs, `"msg":"streaming"`); got < 2 {
		t.Errorf("streaming started %d times, want a second session after the restart", got)
	}
	_, page := get(t, addr, "/metrics")
	if v := testsupport.Metric(page, "capture_reconnects_total"); v < 1 {
		t.Errorf("capture_reconnects_total = %v, want ≥ 1", v)
	}
	if v := testsupport.Metric(page, "capture_rows_captured_total"); v < n {
		t.Errorf("capture_rows_captured_total = %v, want ≥ %d (re-reads included)", v, n)
	}
	var s string
	if err := c.QueryRow(context.Background(), "SELECT pg_current_wal_lsn()::text").Scan(&s); err != nil {
		t.Fatal(err)
	}
	end, _ := pglogrepl.ParseLSN(s)
	testsupport.WaitFor(t, "the slot to be confirmed to the end of the load", 20*time.Second, func() bool {
		return e.SlotLSN(c) >= end
	})
}

// A row bigger than the server's max payload goes to FORMS_DLQ as too_large,
// keeping its small values and the start of the big one, within the limit;
// rows after it keep flowing.
func TestTooLargeRowDeadLettered(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	const maxPayload = 64 << 10
	ns, err := localnats.Start(localnats.Options{MaxPayload: maxPayload})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Close)
	e := newEnvOn(t, pg, ns)
	e.Start()
	c := e.Conn()
	e.WaitStreaming(c)
	ctx := context.Background()
	huge := strings.Repeat("0123456789abcdef", 100<<10/16) // 100 KiB
	if _, err := c.Exec(ctx, `INSERT INTO public.form_submissions (newusername, "Comments") VALUES ('Huge Comment', $1)`, huge); err != nil {
		t.Fatal(err)
	}
	s := samples(t)
	if err := insertSamples(ctx, c, s[:2], nil); err != nil {
		t.Fatal(err)
	}
	js := e.JS()
	waitMsgs(t, js, stream.Forms, 2, 20*time.Second)
	waitMsgs(t, js, stream.DLQ, 1, 10*time.Second)

	st, err := js.Stream(ctx, stream.DLQ)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := st.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if size := len(raw.Data); size > maxPayload {
		t.Errorf("dead letter is %d bytes, over the %d max payload", size, maxPayload)
	}
	dl := readAll(t, js, stream.DLQ)[0]
	d := stream.ParseDeadLetter(dl.Hdr)
	if d.Reason != stream.ReasonTooLarge || d.DeadLetteredBy != "capture" || !strings.Contains(d.Error, "max_payload") {
		t.Errorf("dead letter %+v: want reason %s naming max_payload", d, stream.ReasonTooLarge)
	}
	if d.Hash == "" || dl.Ev.GetHash() != d.Hash {
		t.Errorf("dead letter hash header %q, body hash %q", d.Hash, dl.Ev.GetHash())
	}
	if got := form.String(dl.Ev, "newusername"); got != "Huge Comment" {
		t.Errorf("small values are kept: newusername = %q", got)
	}
	if got := form.String(dl.Ev, "Comments"); !strings.HasPrefix(got, huge[:100]) || !strings.Contains(got, "truncated") || len(got) > 2048 {
		t.Errorf("Comments kept as %d bytes %.80q…, want its start, marked truncated", len(got), got)
	}
	if len(dl.Ev.GetSource().GetPrimaryKey()) != 1 || dl.Ev.GetSource().GetCommitLsn() == "" {
		t.Errorf("dead letter lacks the row's source: %v", dl.Ev.GetSource())
	}
	last := readAll(t, js, stream.Forms)[1]
	commit, _ := pglogrepl.ParseLSN(last.Ev.GetSource().GetCommitLsn())
	testsupport.WaitFor(t, "slot confirmed past the rows after the big one", 10*time.Second, func() bool {
		return e.SlotLSN(c) > commit
	})
}
