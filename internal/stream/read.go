package stream

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ReadAll delivers the messages of st from cfg's start up to the last
// sequence at the time of the call (messages added meanwhile are not waited
// for), until fn returns false. It reads with an ordered (ephemeral,
// flow-controlled) consumer, so it is safe beside the services.
func ReadAll(ctx context.Context, st jetstream.Stream, cfg jetstream.OrderedConsumerConfig, fn func(jetstream.Msg) bool) error {
	info, err := st.Info(ctx)
	if err != nil {
		return err
	}
	if info.State.Msgs == 0 {
		return nil
	}
	last := info.State.LastSeq
	cons, err := st.OrderedConsumer(ctx, cfg)
	if err != nil {
		return err
	}
	for ctx.Err() == nil {
		b, err := cons.Fetch(500, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return err
		}
		n, done := 0, false
		for m := range b.Messages() {
			n++
			if done {
				continue // drain the batch
			}
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			if md.Sequence.Stream > last {
				done = true
				continue
			}
			if !fn(m) || md.Sequence.Stream >= last || md.NumPending == 0 {
				done = true
			}
		}
		if err := b.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		if done || n == 0 {
			return nil
		}
	}
	return ctx.Err()
}
