package capture

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/cowjacket/formjira/internal/pgcdc"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/testsupport"
)

// /readyz: the active capture and a healthy standby are ready (a rollout
// completes with a standby); any other state, or NATS down, is 503 saying
// why.
func TestReadyz(t *testing.T) {
	for _, tt := range []struct {
		state  pgcdc.State
		nats   bool
		code   int
		naming string
	}{
		{pgcdc.StateStreaming, true, 200, "active"},
		{pgcdc.StateStandby, true, 200, "standby"},
		{pgcdc.StateStreaming, false, 503, "NATS disconnected"},
		{pgcdc.StateStandby, false, 503, "NATS disconnected"},
		{pgcdc.StateReconnecting, true, 503, "reconnecting to PostgreSQL"},
		{pgcdc.StateStarting, true, 503, "starting"},
		{pgcdc.StateStopped, true, 503, "stopped"},
	} {
		w := httptest.NewRecorder()
		readyz(w, tt.state, tt.nats)
		if w.Code != tt.code || !strings.Contains(w.Body.String(), tt.naming) {
			t.Errorf("%s, NATS up %v: %d %q, want %d naming %q", tt.state, tt.nats, w.Code, w.Body.String(), tt.code, tt.naming)
		}
	}
}

// Each capture publishes its status in KV bucket FORMS_CAPTURE: an active
// and a standby one, each with its role, the slot as PostgreSQL shows it,
// and what it published. A stopped capture's entry goes at once; the
// standby that takes over says so. (A killed one's expires with the
// bucket's TTL.)
func TestCaptureStatusEntries(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	e := newEnv(t)
	first := e.Start()
	c := e.Conn()
	e.WaitStreaming(c)
	ctx := context.Background()
	if err := insertSamples(ctx, c, samples(t)[:3], nil); err != nil {
		t.Fatal(err)
	}
	js := e.JS()
	waitMsgs(t, js, stream.Forms, 3, 20*time.Second)
	second := e.Start()

	var caps []stream.CaptureStatus
	testsupport.WaitFor(t, "an active and a standby entry, the active one having seen its rows confirmed", 15*time.Second, func() bool {
		var err error
		caps, err = stream.ReadCaptureStatus(ctx, js)
		return err == nil && len(caps) == 2 && caps[0].Role == stream.RoleActive && caps[1].Role == stream.RoleStandby &&
			caps[0].RowsPublished == 3 && caps[0].ConfirmedLSN != "" && caps[1].ConfirmedLSN != "" &&
			strings.Contains(caps[1].State, "standby") // its first report may still say "starting"
	})
	act, sby := caps[0], caps[1]
	walEnd, err := pglogrepl.ParseLSN(act.WALEnd)
	if err != nil {
		t.Errorf("wal_end %q: %v", act.WALEnd, err)
	}
	confirmed, err := pglogrepl.ParseLSN(act.ConfirmedLSN)
	if err != nil || confirmed > walEnd {
		t.Errorf("confirmed_lsn %q (%v) beyond wal_end %s", act.ConfirmedLSN, err, act.WALEnd)
	}
	for _, s := range caps {
		if s.Table != "public.form_submissions" || s.Slot != "cowjacket" || s.Instance == "" ||
			time.Since(s.UpdatedAt) > 5*time.Second || s.StartedAt.After(s.UpdatedAt) || s.ConfirmedAt.IsZero() || s.SlotLagBytes < 0 {
			t.Errorf("entry %+v", s)
		}
	}
	if act.Instance == sby.Instance || act.State != "streaming" || !strings.Contains(sby.State, "standby") || sby.RowsPublished != 0 {
		t.Errorf("active %+v\nstandby %+v", act, sby)
	}
	kv, err := js.KeyValue(ctx, stream.CaptureStatusBucket)
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil || st.TTL() != stream.CaptureStatusTTL || st.History() != 1 {
		t.Errorf("bucket status %+v, %v: want TTL %v, history 1", st, err, stream.CaptureStatusTTL)
	}

	first.Stop(t)
	testsupport.WaitFor(t, "the stopped capture's entry to go and the standby's to say active", 15*time.Second, func() bool {
		caps, err = stream.ReadCaptureStatus(ctx, js)
		return err == nil && len(caps) == 1 && caps[0].Instance == sby.Instance && caps[0].Role == stream.RoleActive
	})
	second.Abandon(t) // kill -9: nothing removes the entry; it expires
	if caps, err = stream.ReadCaptureStatus(ctx, js); err != nil || len(caps) != 1 {
		t.Errorf("after kill -9: %+v, %v; want the entry until it expires", caps, err)
	}
}
