// Package capturetest is the shared world of capture's tests (the service's
// in internal/capture, the commands' in cmd/capture): a fresh database with
// the form table on a real PostgreSQL, its own nats-server, capture's
// variables pointing at both, and the reads that check what arrived.
//
// capture runs as the least-privilege role of
// deploy/postgres/02-capture-role.sql (Role), set up by that very file,
// over verified TLS (sslmode=verify-full) with a client certificate and
// its password: the servers come from Main or StartPG, which start
// PostgreSQL with TLS and test certificates.
package capturetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/localnats"
	"github.com/cowjacket/formjira/internal/localpg"
	"github.com/cowjacket/formjira/internal/pgcdc"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/testsupport"
	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

// Service runs capture in-process until ctx ends (capture.Run, or the
// binary's service command).
type Service func(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error

// Env is one test's world.
type Env struct {
	T       *testing.T
	DSN     string // the database's owner (superuser postgres, no TLS): the test's own session
	NATS    *localnats.Server
	Vars    map[string]string
	Service Service
}

// New is a fresh database with the form table on srv, a nats-server of its
// own, and capture's variables for both.
func New(t *testing.T, srv *localpg.Server, service Service) *Env {
	t.Helper()
	return NewOn(t, srv, localnats.StartTB(t), service)
}

// NewOn is New on a given nats-server (a test that needs a small max
// payload brings its own).
func NewOn(t *testing.T, srv *localpg.Server, ns *localnats.Server, service Service) *Env {
	t.Helper()
	return newIn(t, srv.NewDatabase(t), ns, service)
}

var asciiSeq atomic.Int64

// NewSQLASCII is New on a SQL_ASCII database: the one encoding whose text
// may be any bytes, so a value can be one no event can carry (a real
// poison row, dead-lettered).
func NewSQLASCII(t *testing.T, srv *localpg.Server, service Service) *Env {
	t.Helper()
	name := fmt.Sprintf("t_sqlascii_%d_%d", os.Getpid(), asciiSeq.Add(1))
	return NewInDatabase(t, srv, name, "ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0", service)
}

// NewInDatabase is New in a database called name, made with options
// (CREATE DATABASE name options) and dropped at the end of the test.
func NewInDatabase(t *testing.T, srv *localpg.Server, name, options string, service Service) *Env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := srv.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, "CREATE DATABASE "+name+" "+options); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := srv.DropDatabase(ctx, name); err != nil {
			t.Error(err)
		}
	})
	return newIn(t, srv.DSN(name), localnats.StartTB(t), service)
}

func newIn(t *testing.T, dsn string, ns *localnats.Server, service Service) *Env {
	t.Helper()
	e := &Env{T: t, DSN: dsn, NATS: ns, Service: service}
	e.Exec(form.SchemaSQL)
	e.Exec(captureRoleSQL(t))
	e.Vars = map[string]string{
		"DATABASE_URL": roleDSN(t, dsn),
		"NATS_URL":     e.NATS.URL(),
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

// With is a copy of e whose variables are e's with extra set over them.
func (e *Env) With(t *testing.T, extra map[string]string) *Env {
	c := *e
	c.T = t
	c.Vars = maps.Clone(e.Vars)
	maps.Copy(c.Vars, extra)
	return &c
}

// Getenv reads e's variables.
func (e *Env) Getenv(k string) string { return e.Vars[k] }

// Conn is a session to the test database, closed at the end of the test.
func (e *Env) Conn() *pgx.Conn {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, e.DSN)
	if err != nil {
		e.T.Fatal(err)
	}
	e.T.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// Exec runs sql on a new session.
func (e *Env) Exec(sql string, args ...any) {
	e.T.Helper()
	c := e.Conn()
	if _, err := c.Exec(context.Background(), sql, args...); err != nil {
		e.T.Fatalf("%s: %v", sql, err)
	}
	c.Close(context.Background())
}

// InsertSamples inserts the samples, one transaction each; tag, when set,
// replaces Comments so that every row is distinct.
func InsertSamples(ctx context.Context, c *pgx.Conn, samples []form.Sample, tag func(i int) string) error {
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

// Samples are the 200 sample submissions.
func Samples(t testing.TB) []form.Sample {
	t.Helper()
	s, err := form.Samples()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Many returns n samples cycling through the 200.
func Many(t testing.TB, n int) []form.Sample {
	s := Samples(t)
	out := make([]form.Sample, n)
	for i := range out {
		out[i] = s[i%len(s)]
	}
	return out
}

// Running is a capture started in-process.
type Running struct {
	cancel context.CancelCauseFunc
	done   chan error
	Logs   *testsupport.Buffer
}

// Start runs e.Service with e's variables until Stop, Abandon or the end
// of the test; on failure the test log gets its log.
func (e *Env) Start() *Running {
	e.T.Helper()
	ctx, cancel := context.WithCancelCause(context.Background())
	r := &Running{cancel: cancel, done: make(chan error, 1), Logs: &testsupport.Buffer{}}
	vars := e.With(e.T, nil).Vars // later changes to e.Vars are not this capture's
	go func() { r.done <- e.Service(ctx, func(k string) string { return vars[k] }, io.Discard, r.Logs) }()
	t := e.T
	t.Cleanup(func() {
		r.cancel(nil)
		<-r.done
		if t.Failed() {
			t.Logf("capture logs:\n%s", r.Logs.String())
		}
	})
	return r
}

// Stop is SIGTERM: it must return nil within 10 s.
func (r *Running) Stop(t *testing.T) {
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
		t.Fatalf("capture did not stop within 10 s; logs:\n%s", r.Logs.String())
	}
	t.Logf("graceful stop took %v", time.Since(begin).Round(time.Millisecond))
}

// Exited waits up to d for the service to return by itself: its error, or
// ok false while it still runs.
func (r *Running) Exited(d time.Duration) (err error, ok bool) {
	select {
	case err = <-r.done:
		r.done <- nil // for Cleanup
		return err, true
	case <-time.After(d):
		return nil, false
	}
}

// Abandon is kill -9: no drain, no final status update.
func (r *Running) Abandon(t *testing.T) {
	t.Helper()
	r.cancel(pgcdc.ErrAbandon)
	select {
	case <-r.done:
		r.done <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("capture did not abandon within 10 s")
	}
}

// JS is a JetStream client of e's nats-server that reconnects for ever.
func (e *Env) JS() jetstream.JetStream {
	e.T.Helper()
	nc, err := nats.Connect(e.NATS.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		e.T.Fatal(err)
	}
	e.T.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		e.T.Fatal(err)
	}
	return js
}

// StreamMsgs is the number of messages in a stream (0 when absent).
func StreamMsgs(ctx context.Context, js jetstream.JetStream, name string) uint64 {
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

// WaitMsgs waits until the stream holds want messages, then checks that
// no more arrive for a moment.
func WaitMsgs(t *testing.T, js jetstream.JetStream, name string, want uint64, timeout time.Duration) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	var got uint64
	for time.Now().Before(deadline) {
		if got = StreamMsgs(ctx, js, name); got >= want {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got != want {
		t.Fatalf("stream %s holds %d messages after %v, want %d", name, got, timeout, want)
	}
	time.Sleep(300 * time.Millisecond)
	if got = StreamMsgs(ctx, js, name); got != want {
		t.Fatalf("stream %s grew to %d messages, want %d", name, got, want)
	}
}

// StoredMsg is a message as the stream stored it, its body decoded.
type StoredMsg struct {
	Seq     uint64
	Subject string
	Time    time.Time
	Hdr     nats.Header
	Ev      *formsv1.FormSubmission
}

// ReadAll returns every message of a stream in sequence order.
func ReadAll(t *testing.T, js jetstream.JetStream, name string) []StoredMsg {
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
	var out []StoredMsg
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
		out = append(out, StoredMsg{Seq: m.Sequence, Subject: m.Subject, Time: m.Time, Hdr: m.Header, Ev: ev})
	}
	return out
}

// SlotLSN reads the slot's confirmed_flush_lsn.
func (e *Env) SlotLSN(c *pgx.Conn) pglogrepl.LSN {
	e.T.Helper()
	s, err := pgcdc.ReadSlot(context.Background(), c, "cowjacket")
	if err != nil {
		e.T.Fatal(err)
	}
	return s.Confirmed
}

// WaitStreaming waits until the slot has an active reader.
func (e *Env) WaitStreaming(c *pgx.Conn) {
	e.T.Helper()
	// A walsender, not the backend that is still creating the slot (which
	// also shows as its active pid).
	testsupport.WaitFor(e.T, "a walsender on the slot", 20*time.Second, func() bool {
		var ok bool
		err := c.QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM pg_replication_slots s
			JOIN pg_stat_activity a ON a.pid = s.active_pid
			WHERE s.slot_name = 'cowjacket' AND a.backend_type = 'walsender')`).Scan(&ok)
		return err == nil && ok
	})
}

// Get fetches http://addr+path and returns status and body.
func Get(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	st, body := testsupport.Get(addr, path)
	if st == 0 {
		t.Fatalf("GET %s: %s", path, body)
	}
	return st, body
}

// PKOf is the event's primary key as text.
func PKOf(ev *formsv1.FormSubmission) string {
	var b strings.Builder
	for _, c := range ev.GetSource().GetPrimaryKey() {
		s, _ := form.Canonical(c.GetValue())
		b.WriteString(s)
	}
	return b.String()
}
