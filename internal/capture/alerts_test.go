package capture

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/cowjacket/formjira/internal/alert"
	"github.com/cowjacket/formjira/internal/capture/capturetest"
	"github.com/cowjacket/formjira/internal/pgcdc"
	"github.com/cowjacket/formjira/internal/stream"
)

// webhook is an httptest receiver of alert.WebhookSink posts.
type webhook struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []alert.WebhookPayload
}

func newWebhook(t *testing.T) *webhook {
	w := &webhook{}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var p alert.WebhookPayload
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
			t.Errorf("webhook body: %v", err)
			rw.WriteHeader(http.StatusBadRequest)
			return
		}
		w.mu.Lock()
		w.got = append(w.got, p)
		w.mu.Unlock()
	}))
	t.Cleanup(w.srv.Close)
	return w
}

func (w *webhook) posts() []alert.WebhookPayload {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]alert.WebhookPayload(nil), w.got...)
}

// count is how many posted alerts have kind and resolved.
func (w *webhook) count(kind alert.Kind, resolved bool) int {
	n := 0
	for _, p := range w.posts() {
		for _, a := range p.Alerts {
			if a.Kind == kind && a.Resolved == resolved {
				n++
			}
		}
	}
	return n
}

func (w *webhook) find(kind alert.Kind, resolved bool) alert.WebhookAlert {
	for _, p := range w.posts() {
		for _, a := range p.Alerts {
			if a.Kind == kind && a.Resolved == resolved {
				return a
			}
		}
	}
	return alert.WebhookAlert{}
}

// waitFor is testsupport.WaitFor that shows what was posted when it times out.
func (w *webhook) waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; posted:\n%s", timeout, what, w.dump())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (w *webhook) dump() string {
	var b strings.Builder
	for _, p := range w.posts() {
		fmt.Fprintf(&b, "---\n%s\n", p.Text)
	}
	return b.String()
}

// Real capture, real Postgres and nats-server, alerts to a webhook: normal
// streaming sends nothing; nats-server down during inserts raises exactly
// one stall alert and, the slot lagging past a small ALERT_SLOT_LAG_BYTES,
// one slot-lag alert; nats-server back resolves both; a graceful stop
// still takes less than 10 s.
func TestAlertsStallAndSlotLag(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	hook := newWebhook(t)
	e := newEnv(t)
	e.Vars["ALERT_WEBHOOK_URL"] = hook.srv.URL + "/hooks/secret-token"
	e.Vars["ALERT_CAPTURE_STALL_AFTER"] = "1s"
	e.Vars["ALERT_SLOT_LAG_BYTES"] = "16KiB"
	r := e.Start()
	c := e.Conn()
	e.WaitStreaming(c)
	js := e.JS()
	ctx := context.Background()

	// Normal streaming, then idle for longer than the stall threshold
	// (heartbeats keep the position moving): no alert.
	if err := insertSamples(ctx, c, many(t, 30), func(i int) string { return fmt.Sprintf("before %d", i) }); err != nil {
		t.Fatal(err)
	}
	waitMsgs(t, js, stream.Forms, 30, 20*time.Second)
	time.Sleep(2500 * time.Millisecond)
	if n := len(hook.posts()); n != 0 {
		t.Fatalf("%d alerts during normal streaming:\n%s", n, hook.dump())
	}

	e.NATS.Shutdown()
	down := time.Now()
	const outage = 150
	if err := insertSamples(ctx, c, many(t, outage), func(i int) string { return fmt.Sprintf("outage %d", i) }); err != nil {
		t.Fatal(err)
	}
	hook.waitFor(t, "the stall and slot-lag alerts", 15*time.Second, func() bool {
		return hook.count(alert.CaptureStalled, false) > 0 && hook.count(KindSlotLag, false) > 0
	})
	t.Logf("alerts %v after nats went down", time.Since(down).Round(time.Millisecond))
	// Both hold for a while longer: still one alert each.
	time.Sleep(1500 * time.Millisecond)
	if n := hook.count(alert.CaptureStalled, false); n != 1 {
		t.Errorf("%d stall alerts, want 1:\n%s", n, hook.dump())
	}
	if n := hook.count(KindSlotLag, false); n != 1 {
		t.Errorf("%d slot-lag alerts, want 1:\n%s", n, hook.dump())
	}
	stall := hook.find(alert.CaptureStalled, false)
	for _, want := range []string{"not confirming", "unchanged since", "rows in flight", "NATS disconnected", "threshold 1s"} {
		if !strings.Contains(stall.Summary+" "+stall.Detail, want) {
			t.Errorf("stall alert lacks %q: %s / %s", want, stall.Summary, stall.Detail)
		}
	}
	lag := hook.find(KindSlotLag, false)
	for _, want := range []string{"slot lag", "16.0 KiB", "16384 bytes", "ALERT_SLOT_LAG_BYTES"} {
		if !strings.Contains(lag.Summary+" "+lag.Detail, want) {
			t.Errorf("slot-lag alert lacks %q: %s / %s", want, lag.Summary, lag.Detail)
		}
	}
	if strings.Contains(hook.dump(), "secret-token") {
		t.Error("an alert shows the webhook URL")
	}

	if err := e.NATS.Restart(); err != nil {
		t.Fatal(err)
	}
	up := time.Now()
	waitMsgs(t, js, stream.Forms, 30+outage, 30*time.Second)
	hook.waitFor(t, "both alerts resolved", 15*time.Second, func() bool {
		return hook.count(alert.CaptureStalled, true) == 1 && hook.count(KindSlotLag, true) == 1
	})
	t.Logf("resolved %v after nats came back", time.Since(up).Round(time.Millisecond))
	if res := hook.find(alert.CaptureStalled, true); !strings.Contains(res.Detail, "cleared after") {
		t.Errorf("resolved stall alert: %+v", res)
	}
	r.Stop(t)
	if n := len(hook.posts()); n != 4 {
		t.Errorf("%d webhook posts, want 4 (two alerts, two resolutions):\n%s", n, hook.dump())
	}
}

// recorder is an alert.Notifier for the watcher's unit tests.
type recorder struct {
	mu  sync.Mutex
	got []alert.Alert
}

func (r *recorder) Notify(a alert.Alert) {
	r.mu.Lock()
	r.got = append(r.got, a)
	r.mu.Unlock()
}

func (r *recorder) all() []alert.Alert {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]alert.Alert(nil), r.got...)
}

// fakeCapture drives a watcher without Postgres or NATS, on a fake clock.
type fakeCapture struct {
	now       time.Time
	state     pgcdc.State
	confirmed pglogrepl.LSN
	inFlight  int
}

func newFakeWatcher(f *fakeCapture, n alert.Notifier) *watcher {
	clock := func() time.Time { return f.now }
	return &watcher{
		a: n, slot: "cowjacket", lagMax: 1 << 20, tick: time.Second,
		stall:   alert.NewCondition(alert.CaptureStalled, time.Minute, n, alert.WithClock(clock)),
		lag:     alert.NewCondition(KindSlotLag, 0, n, alert.WithClock(clock)),
		state:   func() pgcdc.State { return f.state },
		natsUp:  func() bool { return true },
		confirm: func() pglogrepl.LSN { return f.confirmed },
		flight:  func() int { return f.inFlight },
		now:     clock,
	}
}

func (f *fakeCapture) run(w *watcher, d time.Duration) {
	for end := f.now.Add(d); f.now.Before(end); f.now = f.now.Add(time.Second) {
		w.check()
	}
}

func TestWatcher(t *testing.T) {
	t.Run("standby is no alert", func(t *testing.T) {
		rec := &recorder{}
		f := &fakeCapture{now: time.Unix(1e9, 0), state: pgcdc.StateStandby, confirmed: 100}
		w := newFakeWatcher(f, rec)
		// The slot (held by the other capture) far ahead and lagging.
		w.slotPolled(pgcdc.SlotInfo{Exists: true, Active: true, Confirmed: 100, LagBytes: 1 << 30})
		f.run(w, 10*time.Minute)
		if got := rec.all(); len(got) != 0 {
			t.Errorf("standby alerted: %+v", got)
		}
	})

	t.Run("idle and advancing is no alert", func(t *testing.T) {
		rec := &recorder{}
		f := &fakeCapture{now: time.Unix(1e9, 0), state: pgcdc.StateStreaming, confirmed: 100}
		w := newFakeWatcher(f, rec)
		w.slotPolled(pgcdc.SlotInfo{Exists: true, Active: true, Confirmed: 100})
		f.run(w, 10*time.Minute) // nothing to confirm: the position may stand still
		for range 600 {          // busy: rows in flight, the position moves every check
			f.inFlight = 5
			f.confirmed += 10
			w.check()
			f.now = f.now.Add(time.Second)
		}
		if got := rec.all(); len(got) != 0 {
			t.Errorf("alerted: %+v", got)
		}
	})

	t.Run("WAL ahead and not confirming", func(t *testing.T) {
		rec := &recorder{}
		f := &fakeCapture{now: time.Unix(1e9, 0), state: pgcdc.StateReconnecting, confirmed: 100}
		w := newFakeWatcher(f, rec)
		w.slotPolled(pgcdc.SlotInfo{Exists: true, Confirmed: 100, LagBytes: 4096})
		f.run(w, 59*time.Second)
		if got := rec.all(); len(got) != 0 {
			t.Fatalf("alerted before the threshold: %+v", got)
		}
		f.run(w, 5*time.Minute)
		got := rec.all()
		if len(got) != 1 || got[0].Kind != alert.CaptureStalled || !strings.Contains(got[0].Detail, "server WAL 4.0 KiB ahead") ||
			!strings.Contains(got[0].Detail, "reconnecting to PostgreSQL") {
			t.Fatalf("alerts %+v, want one stall naming the WAL ahead and the replication state", got)
		}
		f.state, f.confirmed = pgcdc.StateStreaming, 200
		f.run(w, 10*time.Second)
		if got := rec.all(); len(got) != 2 || !got[1].Resolved || got[1].Kind != alert.CaptureStalled {
			t.Fatalf("alerts %+v, want the stall then its resolution", got)
		}
	})

	t.Run("slot lag", func(t *testing.T) {
		rec := &recorder{}
		f := &fakeCapture{now: time.Unix(1e9, 0), state: pgcdc.StateStreaming, confirmed: 100}
		w := newFakeWatcher(f, rec)
		w.slotPolled(pgcdc.SlotInfo{Exists: true, Confirmed: 100, LagBytes: 3 << 20, RetainedBytes: 4 << 20})
		f.run(w, time.Minute)
		w.slotPolled(pgcdc.SlotInfo{Exists: true, Confirmed: 100, LagBytes: 512})
		f.run(w, 5*time.Second)
		var kinds []string
		for _, a := range rec.all() {
			kinds = append(kinds, fmt.Sprintf("%s resolved=%v", a.Kind, a.Resolved))
		}
		lags := 0
		for _, a := range rec.all() {
			if a.Kind != KindSlotLag {
				continue
			}
			lags++
			if lags == 1 && (a.Resolved || !strings.Contains(a.Detail, "slot lag 3.0 MiB (3145728 bytes")) {
				t.Errorf("first slot-lag alert: %+v", a)
			}
			if lags == 2 && !a.Resolved {
				t.Errorf("second slot-lag alert is not the resolution: %+v", a)
			}
		}
		if lags != 2 {
			t.Errorf("alerts %v, want one slot-lag alert and its resolution", kinds)
		}
	})
}

func TestAlertConfig(t *testing.T) {
	base := map[string]string{"DATABASE_URL": "postgres://u:hunter2@127.0.0.1:1/db"}
	get := func(extra map[string]string) func(string) string {
		return func(k string) string {
			if v, ok := extra[k]; ok {
				return v
			}
			return base[k]
		}
	}
	for name, want := range map[string]string{
		"ALERT_CAPTURE_STALL_AFTER": "ALERT_CAPTURE_STALL_AFTER: ",
		"ALERT_SLOT_LAG_BYTES":      "ALERT_SLOT_LAG_BYTES: ",
		"ALERT_WEBHOOK_URL":         "ALERT_WEBHOOK_URL: ",
	} {
		err := Run(context.Background(), get(map[string]string{name: "ftp:bogus"}), &strings.Builder{}, &strings.Builder{})
		if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s=bogus: error %v, want one line starting %q", name, err, want)
		}
	}
	cfg, err := LoadConfig(get(map[string]string{"ALERT_SLOT_LAG_BYTES": "2MiB", "ALERT_CAPTURE_STALL_AFTER": "90s"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Alert.SlotLagBytes != 2<<20 || cfg.Alert.CaptureStallAfter != 90*time.Second || cfg.Alert.Enabled() {
		t.Errorf("alert config %+v", cfg.Alert)
	}
	if cfg.Alert.FlushTimeout > 2*time.Second {
		t.Errorf("flush timeout %v, want at most 2s", cfg.Alert.FlushTimeout)
	}

}

// A row capture dead-letters goes into the dead-letter digest, which the
// shutdown flushes; a webhook that never answers delays SIGTERM by at most
// the 2 s flush bound.
func TestAlertsDeadLetterDigestFlushedOnStop(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	var mu sync.Mutex
	var got []alert.WebhookPayload
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var p alert.WebhookPayload
		if err := json.NewDecoder(r.Body).Decode(&p); err == nil {
			mu.Lock()
			got = append(got, p)
			mu.Unlock()
		}
		select { // hang: the sink is stuck
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	e := capturetest.NewSQLASCII(t, pg, Run) // where a poison row can be written
	e.Vars["ALERT_WEBHOOK_URL"] = srv.URL
	r := e.Start()
	c := e.Conn()
	e.WaitStreaming(c)
	if _, err := c.Exec(context.Background(), `INSERT INTO public.form_submissions (newusername, dateneededby, "Comments") VALUES ('Poison Pill', 'infinity', E'caf\xe9')`); err != nil {
		t.Fatal(err)
	}
	waitMsgs(t, e.JS(), stream.DLQ, 1, 10*time.Second)
	time.Sleep(200 * time.Millisecond) // the ack reaches the acker
	mu.Lock()
	early := len(got)
	mu.Unlock()
	if early != 0 {
		t.Fatalf("%d posts before the digest interval", early)
	}
	begin := time.Now()
	r.Stop(t)
	if d := time.Since(begin); d > 4*time.Second {
		t.Errorf("stop took %v with a hanging alert sink, want about the 2 s flush bound", d)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || len(got[0].Alerts) != 1 {
		t.Fatalf("posts %+v, want one digest with one reason", got)
	}
	a := got[0].Alerts[0]
	if a.Kind != alert.DeadLetter || a.Summary != "capture: "+stream.ReasonUndecodable || a.Fields["dlq_seq"] != "1" ||
		!strings.Contains(a.Detail, "Comments") || !strings.Contains(got[0].Subject, "1 dead letter") {
		t.Errorf("digest %q: %+v", got[0].Subject, a)
	}
}
