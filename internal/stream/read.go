package stream

import (
	"context"
	"errors"
	"fmt"
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
	done := false
	var pending uint64 // what the last message said was still to come
	// take hands a batch's messages to fn until done; it drains the rest.
	take := func(b jetstream.MessageBatch) (int, error) {
		n := 0
		for m := range b.Messages() {
			n++
			if md, err := m.Metadata(); err == nil && !done {
				pending = md.NumPending
				done = md.Sequence.Stream > last || !fn(m) || md.Sequence.Stream >= last || md.NumPending == 0
			}
		}
		if err := b.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			return n, err
		}
		return n, nil
	}
	for ctx.Err() == nil {
		// What is stored is there at once: a batch that waited for 500
		// would wait out its MaxWait on a short stream (a second a read).
		b, err := cons.FetchNoWait(500)
		if err != nil {
			return err
		}
		n, err := take(b)
		if err != nil {
			return err
		}
		if n == 0 && !done {
			// Not there at once (each fetch of an ordered consumer may
			// make it anew, on a busy server): wait.
			if b, err = cons.Fetch(500, jetstream.FetchMaxWait(time.Second)); err != nil {
				return err
			}
			if n, err = take(b); err != nil {
				return err
			}
		}
		if done {
			return nil
		}
		if n == 0 && pending == 0 {
			return nil // nothing (more) in range
		}
		if n == 0 {
			// Messages remain (the last page said so) but none came: a
			// short list must not pass for the whole.
			return fmt.Errorf("%w: %s delivered nothing more before its sequence %d (%d pending)", ErrIncomplete, info.Config.Name, last, pending)
		}
	}
	return ctx.Err()
}

// ErrIncomplete: a read ended before the stream's last message.
var ErrIncomplete = errors.New("stream read incomplete")
