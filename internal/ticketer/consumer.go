package ticketer

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/stream"
)

// consumerGone: the pull found no consumer to answer it — FORMS was
// deleted (or lost with a server's state), and its consumer with it.
func consumerGone(err error) bool {
	return errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) ||
		errors.Is(err, nats.ErrNoResponders)
}

// restoreGap spaces the workers' attempts to make the consumer again.
const restoreGap = 5 * time.Second

// restoreConsumer makes the durable consumer again, on FORMS (made again
// by capture, or here if capture has not yet, as at start): the pulls,
// which name the consumer, then find it. Its DeliverAll policy takes every
// event of the new stream.
func (s *service) restoreConsumer(ctx context.Context) {
	s.restoreMu.Lock()
	defer s.restoreMu.Unlock()
	if time.Since(s.restoredAt) < restoreGap {
		return
	}
	s.restoredAt = time.Now()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := stream.EnsureExists(cctx, s.js, stream.FormsConfig(s.cfg.Streams)); err != nil {
		s.log.Warn("consumer "+stream.TicketerConsumer+" gone with its stream, and "+stream.Forms+" cannot be made again yet", "err", err)
		return
	}
	if _, err := s.js.CreateOrUpdateConsumer(cctx, stream.Forms, s.cfg.ConsumerConfig()); err != nil {
		s.log.Warn("consumer "+stream.TicketerConsumer+" gone, and making it again failed", "err", err)
		return
	}
	s.log.Warn("consumer " + stream.TicketerConsumer + " was gone (" + stream.Forms + " deleted or lost by the server): made again; consuming goes on")
}
