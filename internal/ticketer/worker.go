package ticketer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/pause"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/ticketing"
)

// work is one worker: it pulls a batch only when it is free, so no event
// waits in a client-side buffer while its AckWait runs out. The first event
// is long-polled; the rest of the batch is what is already waiting (see
// more), gathered within BATCH_WAIT. While Jira refuses the credentials
// nothing is pulled.
func (s *service) work(ctx, workCtx context.Context) {
	for ctx.Err() == nil {
		if err := s.waitForAuth(ctx); err != nil {
			return
		}
		// Jira down: pull nothing new (what was pulled is held in handle).
		if err := s.site.WaitUp(ctx); err != nil {
			return
		}
		s.consuming.Store(true)
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		first, err := s.cons.Next(jetstream.FetchContext(pctx))
		cancel()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
				s.log.Warn("pull from FORMS failed", "err", err)
				if consumerGone(err) {
					s.restoreConsumer(ctx)
				}
				pause.For(ctx, 500*time.Millisecond)
			}
			continue
		}
		batch := []jetstream.Msg{first}
		if want := s.more(first); want > 0 {
			if more, err := s.cons.Fetch(want, jetstream.FetchMaxWait(s.cfg.BatchWait)); err == nil {
				for m := range more.Messages() {
					batch = append(batch, m)
				}
			}
		}
		s.handle(workCtx, ctx, batch)
	}
}

// more is how many events to add to a batch that starts with first: those
// already waiting in FORMS (the first event's pending count), up to
// BATCH_SIZE. When none is waiting the batch goes at once, so a quiet
// stream pays no BATCH_WAIT; under load batches fill from the backlog that
// builds while the workers are busy with Jira.
func (s *service) more(first jetstream.Msg) int {
	want := s.cfg.BatchSize - 1
	if want <= 0 {
		return 0
	}
	if md, err := first.Metadata(); err == nil {
		want = int(min(md.NumPending, uint64(want)))
	}
	return want
}

// handle processes one batch and settles every message: ack, term after a
// dead letter, or nak with a delay. Nothing is left unsettled.
func (s *service) handle(workCtx, runCtx context.Context, batch []jetstream.Msg) {
	items := make([]ticketing.Item, len(batch))
	for i, msg := range batch {
		it := ticketing.Item{Data: msg.Data(), Subject: msg.Subject(), Stream: stream.Forms, Delivery: 1}
		if md, err := msg.Metadata(); err == nil {
			it.Stream, it.Seq, it.Delivery = md.Stream, md.Sequence.Stream, int(md.NumDelivered)
		}
		it.KeepAlive = func() { _ = msg.InProgress() }
		items[i] = it
	}
	outs := s.engine.Process(ticketing.WithSoftStop(workCtx, runCtx.Done()), items)
	// What is done is settled now, not after an outage holds the rest:
	// unsettled, it would be redelivered (and counted, or dead-lettered,
	// again) once its AckWait passed.
	var t tally
	settled := make([]bool, len(outs))
	s.settle(batch, items, outs, settled, false, &t)
	s.holdUntilUp(workCtx, runCtx, items, outs)
	s.settle(batch, items, outs, settled, true, &t)
	ok, failed, skipped, refusal := t.ok, t.failed, t.skipped, t.refusal
	line := fmt.Sprintf("batch complete: %d successful, %d failed, %d skipped", ok, failed, skipped)
	if t.held > 0 {
		line += fmt.Sprintf(", %d held for Jira (back at once)", t.held)
	}
	s.log.Info(line, "successful", ok, "failed", failed, "skipped", skipped, "held", t.held, "batch", len(batch))
	s.afterBatch(items, outs)
	s.observe(batch, items, outs)
	if ok > 0 {
		s.refused.reset()
	}
	if refusal != nil && !s.authBroken.Swap(true) {
		s.metrics.Refused.Set(1)
		s.log.Error(refusalLine(refusal)+": stopped consuming; events stay in FORMS", "err", refusal.Error())
	}
}

// tally counts a batch's outcomes as its messages are settled.
type tally struct {
	ok, failed, skipped, held int
	refusal                   error
}

// settle acks, terms or naks each message not yet settled; held ones only
// when final (shutdown while Jira is down).
func (s *service) settle(batch []jetstream.Msg, items []ticketing.Item, outs []ticketing.Outcome, settled []bool, final bool, t *tally) {
	for i, o := range outs {
		if settled[i] || o.Status == ticketing.StatusHeld && !final {
			continue
		}
		settled[i] = true
		msg, it := batch[i], items[i]
		var err error
		switch o.Status {
		case ticketing.StatusCreated:
			t.ok++
			err = msg.Ack()
		case ticketing.StatusSkipped:
			t.skipped++
			err = msg.Ack()
		case ticketing.StatusDeadLettered:
			t.failed++
			err = msg.TermWithReason(o.DeadLetter.Reason)
		case ticketing.StatusAuth:
			t.failed++
			t.refusal = o.Err
			err = msg.NakWithDelay(s.cfg.redelivery(1))
		case ticketing.StatusHeld:
			// Shutdown while Jira is down: back soon, not a failure.
			t.held++
			err = msg.NakWithDelay(time.Second)
		default: // StatusRetry, StatusRejected
			t.failed++
			err = msg.NakWithDelay(max(o.RetryIn, s.cfg.redelivery(it.Delivery)))
		}
		if err != nil {
			s.log.Warn("settling message failed; it will be redelivered", "stream_seq", it.Seq, "err", err)
		}
	}
}

// pollPending exports the consumer's backlog.
func (s *service) pollPending(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if info, err := s.cons.Info(ictx); err == nil {
			s.metrics.Pending.Set(float64(info.NumPending))
			s.alerts.observeBacklog(info.NumPending)
			s.metrics.AckPending.Set(float64(info.NumAckPending))
		}
		cancel()
		s.metrics.Pace.Set(s.pacer.Rate(""))
		s.metrics.tick()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
