package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/pgcdc"
	"github.com/cowjacket/formjira/internal/stream"
)

// publisher is the pgcdc.Sink that delivers rows to JetStream and tracks
// the LSN the slot may be confirmed to (design guarantee 1). Streaming and
// backfill both publish through it.
//
// Rows are published asynchronously, at most maxInFlight unacknowledged.
// The window holds them in WAL order, with commit markers between them; the
// acker (run) walks the window from its head, so the confirmed LSN moves to
// a commit's end only after every row before that marker was acknowledged.
// A failed acknowledgement is re-published (same Nats-Msg-Id) until it
// succeeds (deliver): nothing is skipped, so nothing is confirmed past it.
type publisher struct {
	js         jetstream.JetStream
	subject    string
	maxPayload int
	ackTimeout time.Duration
	retryPause time.Duration
	log        *slog.Logger
	m          *metrics
	// onDead, when set, hears of every dead letter FORMS_DLQ stored.
	onDead func(reason, hash, text string, dlqSeq uint64)

	slots     chan struct{} // one token per unacknowledged row
	wake      chan struct{} // tells the acker the window grew
	confirmed atomic.Uint64
	tally     tally

	mu      sync.Mutex
	window  []*entry
	paused  bool          // new publishes wait while a failed row is retried
	changed chan struct{} // closed and replaced when the window shrinks or a pause ends
}

// tally counts what JetStream acknowledged, for backfill's summary.
type tally struct{ stored, duplicates, deadLettered atomic.Int64 }

// entry is a row in flight, or (msg nil) a commit marker.
type entry struct {
	msg  *nats.Msg
	fut  jetstream.PubAckFuture // nil when the async publish call itself failed
	err  error
	sent time.Time
	dead string // dead-letter reason, "" for a FORMS row
	hash string
	lsn  pglogrepl.LSN
}

var _ pgcdc.Sink = (*publisher)(nil)

func newPublisher(js jetstream.JetStream, subject string, maxPayload, maxInFlight int, ackTimeout time.Duration, log *slog.Logger, m *metrics) *publisher {
	return &publisher{
		js: js, subject: subject, maxPayload: maxPayload, ackTimeout: ackTimeout, log: log, m: m,
		slots: make(chan struct{}, maxInFlight), wake: make(chan struct{}, 1),
		retryPause: 250 * time.Millisecond, changed: make(chan struct{}),
	}
}

// Publish implements pgcdc.Sink.
func (p *publisher) Publish(ctx context.Context, row pgcdc.Decoded) error {
	msg, reason := message(p.subject, p.maxPayload, row)
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := p.waitUntil(ctx, func() bool { return !p.paused }); err != nil {
		<-p.slots
		return err
	}
	e := &entry{msg: msg, dead: reason, hash: row.Event.GetHash(), sent: time.Now()}
	e.fut, e.err = p.js.PublishMsgAsync(msg)
	if reason != "" {
		p.log.Warn("dead-lettering row", "hash", e.hash, "reason", reason, "error", msg.Header.Get(stream.HeaderError))
	}
	p.push(e)
	p.m.inFlight.Set(float64(len(p.slots)))
	return nil
}

// Commit implements pgcdc.Sink.
func (p *publisher) Commit(end pglogrepl.LSN) {
	p.mu.Lock()
	switch n := len(p.window); {
	case n == 0:
		p.advance(end)
	case p.window[n-1].msg == nil:
		// Consecutive markers collapse: the window stays bounded by rows.
		p.window[n-1].lsn = max(p.window[n-1].lsn, end)
	default:
		p.window = append(p.window, &entry{lsn: end})
	}
	p.mu.Unlock()
	p.signal()
}

func (p *publisher) push(e *entry) {
	p.mu.Lock()
	p.window = append(p.window, e)
	p.mu.Unlock()
	p.signal()
}

func (p *publisher) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// broadcastLocked wakes every waitUntil; p.mu is held.
func (p *publisher) broadcastLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// waitUntil waits until cond, checked under p.mu, holds, or ctx ends.
func (p *publisher) waitUntil(ctx context.Context, cond func() bool) error {
	for {
		p.mu.Lock()
		if cond() {
			p.mu.Unlock()
			return nil
		}
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (p *publisher) setPaused(paused bool) {
	p.mu.Lock()
	if p.paused != paused {
		p.paused = paused
		p.broadcastLocked()
	}
	p.mu.Unlock()
}

func (p *publisher) advance(lsn pglogrepl.LSN) {
	for {
		cur := p.confirmed.Load()
		if uint64(lsn) <= cur {
			return
		}
		if p.confirmed.CompareAndSwap(cur, uint64(lsn)) {
			p.m.confirmedLSN.Set(float64(lsn))
			return
		}
	}
}

// Confirmed implements pgcdc.Sink.
func (p *publisher) Confirmed() pglogrepl.LSN { return pglogrepl.LSN(p.confirmed.Load()) }

// inFlight is the number of rows published and not yet acknowledged.
func (p *publisher) inFlight() int { return len(p.slots) }

// Drain implements pgcdc.Sink.
func (p *publisher) Drain(ctx context.Context) error {
	if err := p.waitUntil(ctx, func() bool { return len(p.window) == 0 }); err != nil {
		p.mu.Lock()
		n := len(p.window)
		p.mu.Unlock()
		return fmt.Errorf("%d entries unacknowledged: %w", n, err)
	}
	return nil
}

func (p *publisher) head(ctx context.Context) (*entry, error) {
	for {
		p.mu.Lock()
		if len(p.window) > 0 {
			e := p.window[0]
			p.mu.Unlock()
			return e, nil
		}
		p.mu.Unlock()
		select {
		case <-p.wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// pop removes the head and returns its LSN, read under the lock because
// Commit may still be raising a marker's LSN.
func (p *publisher) pop() pglogrepl.LSN {
	p.mu.Lock()
	lsn := p.window[0].lsn
	p.window[0] = nil
	p.window = p.window[1:]
	if len(p.window) == 0 {
		p.window = nil // let the backing array go
	}
	p.broadcastLocked()
	p.mu.Unlock()
	return lsn
}

// run acknowledges the window in order until ctx ends. It must outlive the
// stream, which drains through it on shutdown.
func (p *publisher) run(ctx context.Context) error {
	for {
		e, err := p.head(ctx)
		if err != nil {
			return nil
		}
		if e.msg == nil {
			p.advance(p.pop())
			continue
		}
		ack, ok := p.deliver(ctx, e)
		if !ok {
			return nil
		}
		p.pop()
		<-p.slots
		p.account(e, ack)
	}
}

// deliver is the one "publish until acknowledged" loop: it waits for the
// row's asynchronous acknowledgement and, when that fails, re-publishes the
// same message (same Nats-Msg-Id) with a growing pause until JetStream
// takes it. ok is false only when ctx ended first.
func (p *publisher) deliver(ctx context.Context, e *entry) (ack *jetstream.PubAck, ok bool) {
	ack, err := p.await(ctx, e)
	for attempt := 2; err != nil; attempt++ {
		if ctx.Err() != nil {
			return nil, false
		}
		// Re-sending what the server refuses as too big would stall the
		// slot for ever (a server with a smaller max_payload than the one
		// we measured at start-up): dead-letter it instead.
		if errors.Is(err, nats.ErrMaxPayload) && e.dead == "" {
			if ev, uerr := stream.Unmarshal(e.msg.Data); uerr == nil {
				limit := int(p.js.Conn().MaxPayload())
				e.msg = tooLarge(ev, fmt.Sprintf("NATS refused the %d-byte event: %v", len(e.msg.Data), err), limit)
				e.dead = stream.ReasonTooLarge
				p.log.Warn("dead-lettering row", "hash", e.hash, "reason", e.dead, "error", e.msg.Header.Get(stream.HeaderError))
			}
		}
		// Hold back new rows so the retried one is not overtaken more
		// than by what is already in flight.
		p.setPaused(true)
		p.m.retries.Inc()
		p.log.Warn("publish failed; retrying the same message", "hash", e.hash, "attempt", attempt, "error", err.Error())
		if attempt > 2 {
			select {
			case <-ctx.Done():
				return nil, false
			case <-time.After(min(p.retryPause*time.Duration(attempt-2), 2*time.Second)):
			}
		}
		actx, cancel := context.WithTimeout(ctx, p.ackTimeout)
		ack, err = p.js.PublishMsg(actx, e.msg)
		cancel()
	}
	p.setPaused(false)
	return ack, true
}

// account records an acknowledged row in the metrics and the tally.
func (p *publisher) account(e *entry, ack *jetstream.PubAck) {
	p.m.inFlight.Set(float64(len(p.slots)))
	p.m.latency.Observe(time.Since(e.sent).Seconds())
	switch {
	case e.dead != "":
		p.tally.deadLettered.Add(1)
		p.m.deadLettered.WithLabelValues(e.dead).Inc()
		if p.onDead != nil && !ack.Duplicate {
			p.onDead(e.dead, e.hash, e.msg.Header.Get(stream.HeaderError), ack.Sequence)
		}
	case ack.Duplicate:
		p.tally.duplicates.Add(1)
		p.m.published.WithLabelValues("duplicate").Inc()
	default:
		p.tally.stored.Add(1)
		p.m.published.WithLabelValues("stored").Inc()
	}
	p.log.Debug("acked", "hash", e.hash, "stream_seq", ack.Sequence, "duplicate", ack.Duplicate)
}

var errNoFuture = errors.New("async publish not accepted")

func (p *publisher) await(ctx context.Context, e *entry) (*jetstream.PubAck, error) {
	if e.fut == nil {
		if e.err == nil {
			e.err = errNoFuture
		}
		return nil, e.err
	}
	select {
	case ack := <-e.fut.Ok():
		return ack, nil
	case err := <-e.fut.Err():
		return nil, err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
