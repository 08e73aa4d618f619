package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cowjacket/formjira/internal/testsupport"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/localnats"
	"github.com/cowjacket/formjira/internal/localpg"
	"github.com/cowjacket/formjira/internal/stream"
	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

var pg *localpg.Server

func TestMain(m *testing.M) { os.Exit(localpg.Main(m, &pg)) }

// env is one test's world: a fresh database with the form table, its own
// nats-server, and capture's variables pointing at both.
type env struct {
	t    *testing.T
	dsn  string
	nats *localnats.Server
	vars map[string]string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvOn(t, pg, localnats.StartTB(t))
}

// newEnvOn is newEnv on a given Postgres and nats-server (a test that kills
// Postgres, or needs a small max payload, brings its own).
func newEnvOn(t *testing.T, srv *localpg.Server, ns *localnats.Server) *env {
	t.Helper()
	e := &env{t: t, dsn: srv.NewDatabase(t), nats: ns}
	e.exec(form.SchemaSQL)
	e.vars = map[string]string{
		"DATABASE_URL": e.dsn,
		"NATS_URL":     e.nats.URL(),
		"HTTP_ADDR":    "off",
		// Short intervals make the idle-advance and takeover paths happen in
		// seconds instead of the production defaults' minutes.
		"STATUS_INTERVAL":     "1s",
		"HEARTBEAT_INTERVAL":  "1s",
		"STANDBY_POLL":        "200ms",
		"PUBLISH_ACK_TIMEOUT": "2s",
		"LOG_LEVEL":           "info",
	}
	return e
}

func (e *env) getenv(k string) string { return e.vars[k] }

func (e *env) conn() *pgx.Conn {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, e.dsn)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func (e *env) exec(sql string, args ...any) {
	e.t.Helper()
	c := e.conn()
	if _, err := c.Exec(context.Background(), sql, args...); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
	c.Close(context.Background())
}

// insertSamples inserts the samples, one transaction each; tag, when set,
// replaces Comments so that every row is distinct.
func insertSamples(ctx context.Context, c *pgx.Conn, samples []form.Sample, tag func(i int) string) error {
	q := form.InsertSQL("public.form_submissions")
	for i, s := range samples {
		args := s.Args()
		if tag != nil {
			for j, fc := range form.FormColumns {
				if fc.Name == "Comments" {
					args[j] = tag(i)
				}
			}
		}
		if _, err := c.Exec(ctx, q, args...); err != nil {
			return fmt.Errorf("insert %d: %w", i, err)
		}
	}
	return nil
}

func samples(t testing.TB) []form.Sample {
	t.Helper()
	s, err := form.Samples()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// many returns n samples cycling through the 200.
func many(t testing.TB, n int) []form.Sample {
	s := samples(t)
	out := make([]form.Sample, n)
	for i := range out {
		out[i] = s[i%len(s)]
	}
	return out
}

type syncBuffer = testsupport.Buffer

// running is a capture started in-process with Run.
type running struct {
	cancel context.CancelCauseFunc
	done   chan error
	logs   *syncBuffer
}

func (e *env) start(args ...string) *running {
	e.t.Helper()
	ctx, cancel := context.WithCancelCause(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1), logs: &syncBuffer{}}
	go func() { r.done <- Run(ctx, args, e.getenv, io.Discard, r.logs) }()
	e.t.Cleanup(func() {
		r.cancel(nil)
		<-r.done
		if e.t.Failed() {
			e.t.Logf("capture logs:\n%s", r.logs.String())
		}
	})
	return r
}

// stop is SIGTERM: it must return nil within 10 s.
func (r *running) stop(t *testing.T) {
	t.Helper()
	begin := time.Now()
	r.cancel(nil)
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("capture stopped with %v", err)
		}
		r.done <- nil // for Cleanup
	case <-time.After(10 * time.Second):
		t.Fatalf("capture did not stop within 10 s; logs:\n%s", r.logs.String())
	}
	t.Logf("graceful stop took %v", time.Since(begin).Round(time.Millisecond))
}

// abandon is kill -9: no drain, no final status update.
func (r *running) abandon(t *testing.T) {
	t.Helper()
	r.cancel(ErrAbandon)
	select {
	case <-r.done:
		r.done <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("capture did not abandon within 10 s")
	}
}

func (e *env) js() jetstream.JetStream {
	e.t.Helper()
	nc, err := nats.Connect(e.nats.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		e.t.Fatal(err)
	}
	return js
}

// streamMsgs returns the number of messages in a stream (0 when absent).
func streamMsgs(ctx context.Context, js jetstream.JetStream, name string) uint64 {
	st, err := js.Stream(ctx, name)
	if err != nil {
		return 0
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0
	}
	return info.State.Msgs
}

// waitMsgs waits until the stream holds want messages, then checks that
// no more arrive for a moment.
func waitMsgs(t *testing.T, js jetstream.JetStream, name string, want uint64, timeout time.Duration) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	var got uint64
	for time.Now().Before(deadline) {
		if got = streamMsgs(ctx, js, name); got >= want {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got != want {
		t.Fatalf("stream %s holds %d messages after %v, want %d", name, got, timeout, want)
	}
	time.Sleep(300 * time.Millisecond)
	if got = streamMsgs(ctx, js, name); got != want {
		t.Fatalf("stream %s grew to %d messages, want %d", name, got, want)
	}
}

type storedMsg struct {
	seq  uint64
	time time.Time
	hdr  nats.Header
	ev   *formsv1.FormSubmission
}

// readAll returns every message of a stream in sequence order.
func readAll(t *testing.T, js jetstream.JetStream, name string) []storedMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []storedMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		ev, err := stream.Unmarshal(m.Data)
		if err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
		out = append(out, storedMsg{seq: m.Sequence, time: m.Time, hdr: m.Header, ev: ev})
	}
	return out
}

// slotLSN reads the slot's confirmed_flush_lsn.
func (e *env) slotLSN(c *pgx.Conn) pglogrepl.LSN {
	e.t.Helper()
	s, err := ReadSlot(context.Background(), c, "cowjacket")
	if err != nil {
		e.t.Fatal(err)
	}
	return s.Confirmed
}

// get fetches http://addr+path and returns status and body.
func get(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(b)
}

func pkOf(ev *formsv1.FormSubmission) string {
	var b strings.Builder
	for _, c := range ev.GetSource().GetPrimaryKey() {
		s, _ := form.Canonical(c.GetValue())
		b.WriteString(s)
	}
	return b.String()
}

// waitStreaming waits until the slot has an active reader.
func (e *env) waitStreaming(c *pgx.Conn) {
	e.t.Helper()
	// A walsender, not the backend that is still creating the slot (which
	// also shows as its active pid).
	testsupport.WaitFor(e.t, "a walsender on the slot", 20*time.Second, func() bool {
		var ok bool
		err := c.QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM pg_replication_slots s
			JOIN pg_stat_activity a ON a.pid = s.active_pid
			WHERE s.slot_name = 'cowjacket' AND a.backend_type = 'walsender')`).Scan(&ok)
		return err == nil && ok
	})
}
