package capture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/pgcdc"
	"github.com/cowjacket/formjira/internal/stream"
)

// statusStore is where the reporter writes (KV bucket FORMS_CAPTURE).
type statusStore interface {
	Put(ctx context.Context, key string, value []byte) (uint64, error)
	Delete(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error
}

var _ statusStore = (jetstream.KeyValue)(nil)

// reporter publishes this capture's status (stream.CaptureStatus) every
// interval and at once when its role changes, so operators and the console
// see active and standby captures without database access; on a graceful
// stop it removes the entry (a killed capture's expires).
type reporter struct {
	store  statusStore
	key    string
	every  time.Duration
	state  func() pgcdc.State
	tally  *tally
	log    *slog.Logger
	wake   chan struct{}
	status stream.CaptureStatus // the constant part

	mu      sync.Mutex
	slot    pgcdc.SlotInfo
	slotOK  bool
	movedAt time.Time // when slot.Confirmed last changed
	lastErr string
	errAt   time.Time
}

// instances numbers the captures of this process (tests run several).
var instances atomic.Int64

// instanceID is hostname-pid, plus -N for the process's Nth capture.
func instanceID() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	id := host + "-" + strconv.Itoa(os.Getpid())
	if n := instances.Add(1); n > 1 {
		id += "-" + strconv.FormatInt(n, 10)
	}
	return id
}

func newReporter(store statusStore, cfg Config, state func() pgcdc.State, t *tally, log *slog.Logger) *reporter {
	id := instanceID()
	return &reporter{
		store: store, key: stream.CaptureStatusKey(id), every: min(cfg.StatusInterval, 5*time.Second),
		state: state, tally: t, log: log, wake: make(chan struct{}, 1),
		status: stream.CaptureStatus{Instance: id, Table: cfg.Table.String(), Slot: cfg.Slot, StartedAt: time.Now().UTC()},
	}
}

// stateChanged asks for an update now (the role may have changed).
func (r *reporter) stateChanged() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// slotPolled hears every reading of pgcdc.WatchSlot.
func (r *reporter) slotPolled(s pgcdc.SlotInfo) {
	r.mu.Lock()
	first := !r.slotOK
	if first || s.Confirmed != r.slot.Confirmed {
		r.movedAt = time.Now().UTC()
	}
	r.slot, r.slotOK = s, true
	r.mu.Unlock()
	if first {
		r.stateChanged() // publish the slot without waiting a whole interval
	}
}

// failed records the latest error this capture ran into.
func (r *reporter) failed(err error) {
	r.mu.Lock()
	r.lastErr, r.errAt = err.Error(), time.Now().UTC()
	r.mu.Unlock()
}

// current is the status as of now.
func (r *reporter) current() stream.CaptureStatus {
	s := r.status
	st := r.state()
	s.Role, s.State = stream.RoleStandby, st.String()
	if st == pgcdc.StateStreaming {
		s.Role = stream.RoleActive
	}
	r.mu.Lock()
	if r.slotOK && r.slot.Exists {
		s.ConfirmedLSN, s.ConfirmedAt = lsnText(r.slot.Confirmed), r.movedAt
		s.SlotLagBytes, s.RetainedWALBytes, s.WALEnd = r.slot.LagBytes, r.slot.RetainedBytes, lsnText(r.slot.WALEnd)
	}
	s.LastError, s.LastErrorAt = r.lastErr, r.errAt
	r.mu.Unlock()
	s.RowsPublished = r.tally.stored.Load()
	s.RowsDuplicate = r.tally.duplicates.Load()
	s.RowsDeadLetter = r.tally.deadLettered.Load()
	s.UpdatedAt = time.Now().UTC()
	return s
}

func lsnText(l pglogrepl.LSN) string {
	if l == 0 {
		return ""
	}
	return l.String()
}

// run writes the status until ctx ends, then removes it.
func (r *reporter) run(ctx context.Context) {
	t := time.NewTicker(r.every)
	defer t.Stop()
	failing := false
	for {
		b, _ := json.Marshal(r.current())
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := r.store.Put(pctx, r.key, b)
		cancel()
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			r.log.Warn("cannot publish capture status", "bucket", stream.CaptureStatusBucket, "error", err.Error())
			failing = true
		case err == nil && failing:
			r.log.Info("capture status published again", "bucket", stream.CaptureStatusBucket)
			failing = false
		}
		select {
		case <-ctx.Done():
			if errors.Is(context.Cause(ctx), ErrAbandon) {
				return // as after kill -9: the entry expires
			}
			dctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if err := r.store.Delete(dctx, r.key); err != nil {
				r.log.Debug("capture status not removed; it expires", "error", err.Error(), "ttl", fmt.Sprint(stream.CaptureStatusTTL))
			}
			return
		case <-t.C:
		case <-r.wake:
		}
	}
}
