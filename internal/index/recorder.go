package index

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync/atomic"
	"time"
)

// Observation is what became of one request in a delivery or a replay.
type Observation struct {
	Hash     string
	Seq      uint64 // FORMS sequence
	Delivery int    // the consumer's delivery count (0: a replay)
	Status   string // ticketing.Status's words
	Key      string
	DLQSeq   uint64
	Err      string
	Via      string
	At       time.Time
}

// Recorder writes observations to the index in the background: Observe
// never blocks (when the queue is full the observation is dropped and
// OnDrop told), so the index can never hold up a ticket. A nil *Recorder
// records nothing.
type Recorder struct {
	// OnDrop, if set, is told how many observations a full queue refused.
	OnDrop func(n int)

	idx     *Index
	log     *slog.Logger
	queue   chan []Observation
	pending atomic.Int64 // queued or being written
	done    chan struct{}
}

// NewRecorder queues up to depth batches of observations.
func NewRecorder(idx *Index, log *slog.Logger, depth int) *Recorder {
	return &Recorder{idx: idx, log: log, queue: make(chan []Observation, max(depth, 1)), done: make(chan struct{})}
}

// Observe queues obs, or drops them when the queue is full.
func (r *Recorder) Observe(obs []Observation) {
	if r == nil || len(obs) == 0 {
		return
	}
	r.pending.Add(1)
	select {
	case r.queue <- obs:
	default:
		r.pending.Add(-1)
		if r.OnDrop != nil {
			r.OnDrop(len(obs))
		}
	}
}

// Run writes what is queued until ctx ends, then what is left, briefly.
func (r *Recorder) Run(ctx context.Context) {
	if r == nil {
		return
	}
	defer close(r.done)
	for {
		select {
		case obs := <-r.queue:
			r.write(ctx, obs)
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			defer cancel()
			for {
				select {
				case obs := <-r.queue:
					r.write(dctx, obs)
				default:
					return
				}
			}
		}
	}
}

// Flush waits until everything queued is written (tests and one-off
// commands); false when ctx ended first.
func (r *Recorder) Flush(ctx context.Context) bool {
	if r == nil {
		return true
	}
	for r.pending.Load() > 0 {
		select {
		case <-ctx.Done():
			return false
		case <-r.done:
			return true
		case <-time.After(10 * time.Millisecond):
		}
	}
	return true
}

func (r *Recorder) write(ctx context.Context, obs []Observation) {
	defer r.pending.Add(-1)
	kvs := map[string][]byte{}
	for _, o := range obs {
		if err := r.idx.merge(ctx, o, kvs); err != nil && ctx.Err() == nil {
			r.log.Debug("request index: outcome not recorded", "hash", o.Hash, "err", err)
		}
	}
	if err := r.idx.Put(ctx, kvs); err != nil && ctx.Err() == nil {
		r.log.Debug("request index: outcomes not recorded", "err", err)
	}
}

// merge adds o's keys to kvs. A first delivery has nothing to merge with,
// so it costs no read.
func (x *Index) merge(ctx context.Context, o Observation, kvs map[string][]byte) error {
	if !IsHash(o.Hash) {
		return nil
	}
	var prev *State
	if o.Delivery != 1 {
		var err error
		if prev, err = x.State(ctx, o.Hash); err != nil {
			return err
		}
	}
	s := State{Hash: o.Hash, Seq: o.Seq, Deliveries: o.Delivery, Status: o.Status, Key: o.Key, DLQSeq: o.DLQSeq,
		LastError: o.Err, Via: o.Via, At: o.At.UTC()}
	if s.At.IsZero() {
		s.At = time.Now().UTC()
	}
	if o.Err != "" {
		s.ErrorAt = s.At
	}
	if prev != nil {
		s.Deliveries = max(s.Deliveries, prev.Deliveries)
		s.Replays = prev.Replays
		if s.Seq == 0 {
			s.Seq = prev.Seq
		}
		if s.LastError == "" {
			s.LastError, s.ErrorAt = prev.LastError, prev.ErrorAt
		}
		if s.Key == "" && (s.Status == "skipped" || s.Status == "created") {
			s.Key = prev.Key
		}
	}
	if o.Delivery == 0 {
		s.Replays++
	}
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	kvs[stateKey(o.Hash)] = b
	if o.Key != "" && (o.Status == "created" || o.Status == "skipped") {
		kvs[jiraKey(o.Key)] = []byte(o.Hash)
	}
	return nil
}
