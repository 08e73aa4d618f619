package ticketer

import (
	"cmp"
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/index"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/ticketing"
)

// setUpIndex creates FORMS_INDEX and the tailer and recorder that keep it
// (for `ticketer trace` and the console). Without it tickets are made as
// usual; only trace is blind.
func (s *service) setUpIndex(ctx context.Context, js jetstream.JetStream) (*index.Tailer, error) {
	kv, err := stream.EnsureIndex(ctx, js, s.cfg.Streams)
	if err != nil {
		return nil, err
	}
	forms, err := js.Stream(ctx, stream.Forms)
	if err != nil {
		return nil, err
	}
	idx := &index.Index{KV: kv, JS: js}
	s.index = index.NewRecorder(idx, s.log, 4*s.cfg.Concurrency+16)
	s.index.OnDrop = func(n int) { s.metrics.IndexDropped.Add(float64(n)) }
	return &index.Tailer{Index: idx, Forms: forms, Log: s.log}, nil
}

// observe queues a batch's outcomes for the index; it never blocks.
func (s *service) observe(batch []jetstream.Msg, items []ticketing.Item, outs []ticketing.Outcome) {
	if s.index == nil {
		return
	}
	now := time.Now()
	obs := make([]index.Observation, 0, len(outs))
	for i, o := range outs {
		// The body's hash: a FORMS message's Nats-Msg-Id is not always one.
		hash := cmp.Or(o.Hash, stream.HashOf(batch[i].Headers()))
		obs = append(obs, Observation(hash, items[i], o, "ticketer", now))
	}
	s.index.Observe(obs)
}

// Observation is what the index records of one outcome.
func Observation(hash string, it ticketing.Item, o ticketing.Outcome, via string, at time.Time) index.Observation {
	ob := index.Observation{Hash: hash, Seq: it.Seq, Delivery: it.Delivery, Status: o.Status.String(), Key: o.Key, DLQSeq: o.DLQSeq, Via: via, At: at}
	if via != "ticketer" {
		ob.Delivery = 0
	}
	if o.Err != nil && o.Status != ticketing.StatusCreated && o.Status != ticketing.StatusSkipped {
		ob.Err = o.Err.Error()
	}
	return ob
}
