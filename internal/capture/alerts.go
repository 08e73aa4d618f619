package capture

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/cowjacket/formjira/internal/alert"
	"github.com/cowjacket/formjira/internal/pgcdc"
	"github.com/cowjacket/formjira/internal/stream"
)

// KindSlotLag is the alert for the replication slot lagging more than
// ALERT_SLOT_LAG_BYTES behind the server's WAL. It is its own kind, not
// alert.CaptureStalled, so that the Alerter's per-kind storm control keeps
// it apart from the stall alert: each fires once and resolves on its own.
const KindSlotLag alert.Kind = "capture_slot_lag"

// alertFlushTimeout bounds the Alerter's final flush: with the stream's
// 5 s drain it keeps a SIGTERM exit within 10 s even with every sink down.
const alertFlushTimeout = 2 * time.Second

// watcher turns capture's state into alerts: the stream not confirming
// while there is something to confirm, the slot lagging, and rows
// dead-lettered by capture. Notify never blocks, so neither does it.
type watcher struct {
	a       alert.Notifier
	slot    string
	lagMax  int64
	tick    time.Duration
	stall   *alert.Condition
	lag     *alert.Condition
	state   func() pgcdc.State
	natsUp  func() bool
	confirm func() pglogrepl.LSN // what the publisher may confirm to
	flight  func() int           // rows published, not yet acknowledged

	mu       sync.Mutex
	polled   pgcdc.SlotInfo // the last successful slot poll
	polledOK bool

	// Only check's goroutine touches these.
	lastConfirmed pglogrepl.LSN
	lastAdvance   time.Time
	now           func() time.Time
}

func newWatcher(cfg Config, a alert.Notifier, st *pgcdc.Stream, pub *publisher, natsUp func() bool) *watcher {
	after := cfg.Alert.CaptureStallAfter
	if after <= 0 {
		after = 5 * time.Minute
	}
	lagMax := cfg.Alert.SlotLagBytes
	if lagMax <= 0 {
		lagMax = 1 << 30
	}
	return &watcher{
		a: a, slot: cfg.Slot, lagMax: lagMax,
		tick: min(max(after/5, 100*time.Millisecond), 5*time.Second),
		stall: alert.NewCondition(alert.CaptureStalled, after, a,
			alert.WithSummary("capture not confirming: form rows are not reaching FORMS and WAL accumulates on the database")),
		// The lag is a level, not a duration: alert on the next check.
		lag: alert.NewCondition(KindSlotLag, 0, a,
			alert.WithSummary("capture slot lag above "+fmtBytes(lagMax)+" (ALERT_SLOT_LAG_BYTES)")),
		state:   st.State,
		natsUp:  natsUp,
		confirm: pub.Confirmed,
		flight:  pub.inFlight,
		now:     time.Now,
	}
}

// slotPolled hears every reading of pgcdc.WatchSlot.
func (w *watcher) slotPolled(s pgcdc.SlotInfo) {
	w.mu.Lock()
	w.polled, w.polledOK = s, true
	w.mu.Unlock()
}

// run checks every tick until ctx ends.
func (w *watcher) run(ctx context.Context) {
	t := time.NewTicker(w.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.check()
		}
	}
}

// check observes both conditions once.
//
// Stalled: the confirmed position did not move since the last check while
// there is something to confirm (rows in flight, or the server's WAL, as
// last polled, ahead of it). Healthy capture moves it at least every
// HEARTBEAT_INTERVAL, so only a real stall lasts ALERT_CAPTURE_STALL_AFTER.
// A standby holds nothing: neither condition applies to it.
func (w *watcher) check() {
	now := w.now()
	state := w.state()
	confirmed := w.confirm()
	w.mu.Lock()
	s, ok := w.polled, w.polledOK && w.polled.Exists
	w.mu.Unlock()

	advanced := confirmed != w.lastConfirmed || w.lastAdvance.IsZero()
	if advanced {
		w.lastConfirmed, w.lastAdvance = confirmed, now
	}
	if state == pgcdc.StateStandby {
		w.stall.Observe(false, "this capture is a standby")
		w.lag.Observe(false, "this capture is a standby")
		return
	}

	inFlight := w.flight()
	var ahead int64
	if ok && s.Confirmed != 0 {
		// pg_current_wal_lsn() at the poll.
		if server := s.Confirmed + pglogrepl.LSN(s.LagBytes); server > confirmed {
			ahead = int64(server - confirmed)
		}
	}
	nats := "connected"
	if !w.natsUp() {
		nats = "disconnected (reconnecting)"
	}
	w.stall.Observe(!advanced && (inFlight > 0 || ahead > 0), fmt.Sprintf(
		"confirmed LSN %s unchanged since %s UTC; %d rows in flight (not acknowledged by JetStream); "+
			"server WAL %s ahead; NATS %s; replication %s",
		confirmed, w.lastAdvance.UTC().Format("15:04:05"), inFlight, fmtBytes(ahead), nats, state))

	w.lag.Observe(ok && s.LagBytes > w.lagMax, fmt.Sprintf(
		"slot lag %s (%d bytes, pg_current_wal_lsn() - confirmed_flush_lsn of slot %s) above the threshold %s (%d bytes); "+
			"retained WAL %s; %d rows in flight; NATS %s; replication %s",
		fmtBytes(s.LagBytes), s.LagBytes, w.slot, fmtBytes(w.lagMax), w.lagMax,
		fmtBytes(s.RetainedBytes), inFlight, nats, state))
}

// deadLettered feeds the Alerter's dead-letter digest with a row capture
// stored in FORMS_DLQ.
func (w *watcher) deadLettered(reason, hash, text string, dlqSeq uint64) {
	if w == nil {
		return
	}
	short := hash
	if len(short) > 12 {
		short = short[:12]
	}
	w.a.Notify(alert.Alert{
		Kind:    alert.DeadLetter,
		Summary: "capture: " + reason,
		Detail: fmt.Sprintf("%s seq %d (%s, hash %s): %s", stream.DLQ, dlqSeq, stream.DLQCapture, short,
			strings.TrimSpace(text)),
		Fields: map[string]string{"dlq_seq": strconv.FormatUint(dlqSeq, 10), "hash": hash, "reason": reason},
	})
}

// fmtBytes prints n in binary units, e.g. 1.5 GiB.
func fmtBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	v, i := float64(n)/unit, 0
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + []string{"KiB", "MiB", "GiB", "TiB", "PiB"}[i]
}
