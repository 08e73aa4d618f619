package capture

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cowjacket/formjira/internal/stream"
	"github.com/jackc/pglogrepl"
)

// load inserts n distinct rows (one transaction each) in the background and
// reports how many are in.
func (e *env) load(n int) (inserted func() int, done chan error) {
	e.t.Helper()
	c := e.conn()
	rows := many(e.t, n)
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
	e.vars["MAX_IN_FLIGHT"] = "256"
	r := e.start()
	c := e.conn()
	e.waitStreaming(c)
	inserted, done := e.load(n)
	waitFor(t, "a third of the load", 60*time.Second, func() bool { return inserted() >= n/3 })
	r.abandon(t)
	t.Logf("abandoned after %d rows inserted", inserted())
	time.Sleep(500 * time.Millisecond) // rows keep arriving while no capture runs
	e.start()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	js := e.js()
	waitMsgs(t, js, stream.Forms, n, 90*time.Second)
	seen := map[string]bool{}
	for _, m := range readAll(t, js, stream.Forms) {
		id := pkOf(m.ev)
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
	e.vars["MAX_IN_FLIGHT"] = "100"
	e.start()
	c := e.conn()
	e.waitStreaming(c)
	js := e.js()
	inserted, done := e.load(n)
	waitFor(t, "some rows in FORMS", 30*time.Second, func() bool { return streamMsgs(context.Background(), js, stream.Forms) >= 200 })

	down := time.Now()
	e.nats.Shutdown()
	t.Logf("nats down with %d rows inserted", inserted())
	// Acks already on the wire may still confirm for a moment; after that
	// the position must stand still until nats is back.
	time.Sleep(1500 * time.Millisecond)
	frozen := e.slotLSN(c)
	var maxSeen pglogrepl.LSN
	for time.Since(down) < 10*time.Second {
		l := e.slotLSN(c)
		maxSeen = max(maxSeen, l)
		if l != frozen {
			t.Errorf("confirmed_flush_lsn moved from %s to %s while nats was down", frozen, l)
		}
		time.Sleep(100 * time.Millisecond)
	}
	up := time.Now()
	if err := e.nats.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitMsgs(t, js, stream.Forms, n, 90*time.Second)

	seen := map[string]bool{}
	for _, m := range readAll(t, js, stream.Forms) {
		id := pkOf(m.ev)
		if seen[id] {
			t.Errorf("row id %s twice", id)
		}
		seen[id] = true
		// A row first stored after the outage was not in JetStream while the
		// slot stood at maxSeen: its commit must lie beyond that position.
		if m.time.After(up) {
			commit, _ := pglogrepl.ParseLSN(m.ev.GetSource().GetCommitLsn())
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
	first := e.start()
	c := e.conn()
	e.waitStreaming(c)
	s1, err := ReadSlot(context.Background(), c, "cowjacket")
	if err != nil {
		t.Fatal(err)
	}
	second := e.start()
	waitFor(t, "second capture to report standby", 10*time.Second, func() bool {
		return strings.Contains(second.logs.String(), "standby")
	})
	ctx := context.Background()
	s := samples(t)
	if err := insertSamples(ctx, c, s[:1], nil); err != nil {
		t.Fatal(err)
	}
	js := e.js()
	waitMsgs(t, js, stream.Forms, 1, 10*time.Second)

	first.stop(t)
	stopped := time.Now()
	waitFor(t, "standby to take the slot", 10*time.Second, func() bool {
		s2, err := ReadSlot(ctx, c, "cowjacket")
		return err == nil && s2.Active && s2.ActivePID != s1.ActivePID
	})
	t.Logf("standby took over %v after the first stopped", time.Since(stopped).Round(time.Millisecond))
	if err := insertSamples(ctx, c, s[1:2], nil); err != nil {
		t.Fatal(err)
	}
	waitMsgs(t, js, stream.Forms, 2, 10*time.Second)
	if n := strings.Count(second.logs.String(), `"msg":"standby`); n != 1 {
		t.Errorf("standby logged %d times, want once", n)
	}
}
