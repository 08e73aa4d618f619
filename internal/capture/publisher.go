package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cowjacket/formjira/internal/pgcdc"
	"github.com/cowjacket/formjira/internal/stream"
)

// publisher is the pgcdc.Sink that delivers rows to JetStream and tracks
// the LSN the slot may be confirmed to (design guarantee 1). Streaming and
// backfill both publish through it.
//
// It speaks JetStream's publish protocol over the core connection: each
// message carries a reply subject naming its entry, and the server answers
// there with a PubAck (stored or duplicate) or an error once the message is
// stored. Nothing per message but the message itself: no future, channel
// or timer (the profile of nats.go's PublishMsgAsync showed them).
//
// At most maxInFlight rows are unacknowledged. The window holds them in WAL
// order; an entry carries the commit LSN of the transaction it ends, so
// the confirmed LSN moves to a commit's end only once every row up to it
// is acknowledged (entries leave the window from its head, in order). A
// failed or lost acknowledgement is re-published (same message, same
// Nats-Msg-Id) until JetStream takes it; nothing is skipped, so nothing is
// confirmed past it.
type publisher struct {
	nc         natsConn
	subject    string
	maxPayload int
	ackTimeout time.Duration
	retryPause time.Duration
	log        *slog.Logger
	m          *metrics
	stored     prometheus.Counter // m.published by result, resolved once
	duplicate  prometheus.Counter
	// onDead, when set, hears of every dead letter FORMS_DLQ stored.
	onDead func(reason, hash, text string, dlqSeq uint64)
	// onError, when set, hears of every failed publish (p.mu held).
	onError func(error)

	enc       stream.Encoder // Publish's: one goroutine publishes
	inbox     string         // reply subject prefix; the entry id follows
	sub       *nats.Subscription
	confirmed atomic.Uint64
	tally     tally
	retry     chan struct{} // wakes run: an entry failed
	// missing hears that JetStream has no stream for a publish (deleted,
	// or lost with a server's state): restoreStreams makes it again.
	missing chan struct{}

	mu      sync.Mutex
	win     []*entry // ring of cap maxInFlight: win[head] is the oldest
	head, n int
	headID  uint64   // id of win[head]; ids are consecutive along the ring
	free    []*entry // acknowledged entries, for their buffers
	failing int      // entries that failed and are not yet acknowledged
	waiters chan struct{}
}

// natsConn is what the publisher needs of the NATS connection.
type natsConn interface {
	PublishMsg(m *nats.Msg) error
	Subscribe(subject string, cb nats.MsgHandler) (*nats.Subscription, error)
	NewInbox() string
	MaxPayload() int64
	StatusChanged(statuses ...nats.Status) chan nats.Status
}

var (
	_ natsConn   = (*nats.Conn)(nil)
	_ pgcdc.Sink = (*publisher)(nil)
)

// tally counts what JetStream acknowledged, for backfill's summary.
type tally struct{ stored, duplicates, deadLettered atomic.Int64 }

type entryState uint8

const (
	sent   entryState = iota // published, acknowledgement awaited
	failed                   // to be re-published at retryAt
	acked
)

// entry is a row in the window; its storage is reused once acknowledged.
type entry struct {
	id       uint64
	msg      nats.Msg
	buf      []byte // the event body's storage
	hash     string
	dead     string // dead-letter reason, "" for a FORMS row
	state    entryState
	failedAt bool // has failed: counted in publisher.failing until acked
	attempts int
	err      error
	first    time.Time // first published
	sent     time.Time // last published
	retryAt  time.Time
	seq      uint64 // stream sequence acknowledged
	dup      bool
	commit   pglogrepl.LSN // the end of the transaction this row ends
}

func newPublisher(nc natsConn, subject string, maxPayload, maxInFlight int, ackTimeout time.Duration, log *slog.Logger, m *metrics) (*publisher, error) {
	p := &publisher{
		nc: nc, subject: subject, maxPayload: maxPayload, ackTimeout: ackTimeout, log: log, m: m,
		stored: m.published.WithLabelValues("stored"), duplicate: m.published.WithLabelValues("duplicate"),
		retryPause: 250 * time.Millisecond, retry: make(chan struct{}, 1), missing: make(chan struct{}, 1),
		win: make([]*entry, maxInFlight), inbox: nc.NewInbox() + ".",
	}
	sub, err := nc.Subscribe(p.inbox+"*", p.onReply)
	if err != nil {
		return nil, fmt.Errorf("subscribe to acknowledgements: %w", err)
	}
	p.sub = sub
	return p, nil
}

// close stops listening for acknowledgements.
func (p *publisher) close() { _ = p.sub.Unsubscribe() }

// Publish implements pgcdc.Sink: it waits for room in the window (and
// while a failed row is retried, so it is not overtaken by more than what
// is already in flight), then publishes the row.
func (p *publisher) Publish(ctx context.Context, row pgcdc.Decoded) error {
	p.mu.Lock()
	for p.n == len(p.win) || p.failing > 0 {
		if err := p.waitLocked(ctx); err != nil {
			p.mu.Unlock()
			return err
		}
	}
	e := p.takeLocked()
	p.mu.Unlock()

	p.fill(e, row)
	e.first = time.Now()
	e.sent = e.first
	p.mu.Lock()
	e.id = p.headID + uint64(p.n)
	// The reply subject is set before the entry is in the window, where a
	// reconnect's resend may publish it at once.
	e.msg.Reply = p.inbox + strconv.FormatUint(e.id, 10)
	p.win[(p.head+p.n)%len(p.win)] = e
	p.n++
	n := p.n
	p.mu.Unlock()
	p.m.inFlight.Set(float64(n))
	if err := p.nc.PublishMsg(&e.msg); err != nil {
		p.fail(e, err)
	}
	return nil
}

// waitLocked waits (p.mu held, released meanwhile) until the window
// shrinks or a failure is resolved, or ctx ends.
func (p *publisher) waitLocked(ctx context.Context) error {
	if p.waiters == nil {
		p.waiters = make(chan struct{})
	}
	w := p.waiters
	p.mu.Unlock()
	var err error
	select {
	case <-w:
	case <-ctx.Done():
		err = ctx.Err()
	}
	p.mu.Lock()
	return err
}

// wakeLocked wakes every waitLocked; p.mu is held.
func (p *publisher) wakeLocked() {
	if p.waiters != nil {
		close(p.waiters)
		p.waiters = nil
	}
}

// maxKeptBuffer bounds the body storage an entry keeps for the next row: an
// unusually big row's must not stay pinned MAX_IN_FLIGHT times over.
const maxKeptBuffer = 64 << 10

func (p *publisher) takeLocked() *entry {
	if k := len(p.free); k > 0 {
		e := p.free[k-1]
		p.free = p.free[:k-1]
		buf := e.buf
		if cap(buf) > maxKeptBuffer {
			buf = nil
		}
		*e = entry{buf: buf, msg: nats.Msg{Header: e.msg.Header}}
		return e
	}
	return &entry{} // its buffer grows to the rows' size
}

// fill makes the row's message: the event (stream's codec, into the
// entry's storage), or the dead letter for FORMS_DLQ of a row that cannot
// be an event (undecodable, or bigger than the server's max payload).
func (p *publisher) fill(e *entry, row pgcdc.Decoded) {
	ev := row.Event
	e.hash = ev.GetHash()
	if row.Err != nil {
		p.deadLetter(e, stream.ReasonUndecodable, deadLetter(ev, stream.ReasonUndecodable, row.Err.Error()))
		return
	}
	body, err := p.enc.Append(e.buf[:0], ev)
	if err != nil {
		p.deadLetter(e, stream.ReasonUndecodable, deadLetter(ev, stream.ReasonUndecodable, err.Error()))
		return
	}
	e.buf = body
	e.msg.Subject, e.msg.Data, e.msg.Header = p.subject, body, stream.SetEventHeader(e.msg.Header, e.hash)
	if size := msgSize(&e.msg); p.maxPayload > 0 && size > p.maxPayload {
		text := fmt.Sprintf("event is %d bytes, the NATS server's max_payload is %d", size, p.maxPayload)
		p.deadLetter(e, stream.ReasonTooLarge, tooLarge(ev, text, p.maxPayload))
	}
}

func (p *publisher) deadLetter(e *entry, reason string, m *nats.Msg) {
	e.dead = reason
	e.msg.Subject, e.msg.Data, e.msg.Header = m.Subject, m.Data, m.Header
	p.log.Warn("dead-lettering row", "hash", e.hash, "reason", reason, "error", m.Header.Get(stream.HeaderError))
}

// fail marks a publish as failed, for run to re-publish.
func (p *publisher) fail(e *entry, err error) {
	p.mu.Lock()
	p.failLocked(e, err, time.Now())
	p.mu.Unlock()
	select {
	case p.retry <- struct{}{}:
	default:
	}
}

func (p *publisher) failLocked(e *entry, err error, now time.Time) {
	if e.state != sent {
		return
	}
	e.state, e.err = failed, err
	e.attempts++
	if p.onError != nil {
		p.onError(fmt.Errorf("publish %s: %w", e.hash, err))
	}
	if !e.failedAt {
		e.failedAt = true
		p.failing++
	}
	// The first retry goes at once, later ones back off.
	e.retryAt = now.Add(min(p.retryPause*time.Duration(e.attempts-1), 2*time.Second))
}

// Commit implements pgcdc.Sink: the last row offered ends the transaction
// (or, with none in flight, everything up to end is delivered already).
func (p *publisher) Commit(end pglogrepl.LSN) {
	p.mu.Lock()
	if p.n == 0 {
		p.mu.Unlock()
		p.advance(end)
		return
	}
	last := p.win[(p.head+p.n-1)%len(p.win)]
	last.commit = max(last.commit, end)
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
func (p *publisher) inFlight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// Drain implements pgcdc.Sink.
func (p *publisher) Drain(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.n > 0 {
		if err := p.waitLocked(ctx); err != nil {
			return fmt.Errorf("%d rows unacknowledged: %w", p.n, err)
		}
	}
	return nil
}

// deadNote is a dead letter FORMS_DLQ stored, for onDead.
type deadNote struct {
	reason, hash, text string
	seq                uint64
}

// onReply handles JetStream's answer to one publish (on the subscription's
// goroutine): it acknowledges the entry and moves every acknowledged entry
// at the head out of the window, confirming their commits.
func (p *publisher) onReply(m *nats.Msg) {
	id, err := strconv.ParseUint(m.Subject[min(len(p.inbox), len(m.Subject)):], 10, 64)
	if err != nil {
		return
	}
	seq, dup, aerr := parsePubAck(m)
	now := time.Now()
	var commit pglogrepl.LSN
	var dead []deadNote
	p.mu.Lock()
	e := p.entryLocked(id)
	switch {
	case e == nil || e.state == acked:
		// Already acknowledged (a re-publish's second answer), or stale.
		p.mu.Unlock()
		return
	case aerr != nil:
		p.failLocked(e, aerr, now)
		p.mu.Unlock()
		select {
		case p.retry <- struct{}{}:
		default:
		}
		if streamMissing(aerr) {
			select {
			case p.missing <- struct{}{}:
			default:
			}
		}
		return
	}
	e.state, e.seq, e.dup = acked, seq, dup
	if e.failedAt {
		p.failing--
	}
	popped := false
	for p.n > 0 && p.win[p.head].state == acked {
		h := p.win[p.head]
		p.win[p.head] = nil
		p.head = (p.head + 1) % len(p.win)
		p.headID++
		p.n--
		popped = true
		commit = max(commit, h.commit)
		if d := p.account(h, now); d != nil {
			dead = append(dead, *d)
		}
		p.free = append(p.free, h)
	}
	if popped || p.failing == 0 {
		p.wakeLocked()
	}
	n := p.n
	p.mu.Unlock()
	p.m.inFlight.Set(float64(n))
	if commit != 0 {
		p.advance(commit)
	}
	if p.onDead != nil {
		for _, d := range dead {
			p.onDead(d.reason, d.hash, d.text, d.seq)
		}
	}
}

// entryLocked is the entry of id in the window, or nil.
func (p *publisher) entryLocked(id uint64) *entry {
	if id < p.headID || id-p.headID >= uint64(p.n) {
		return nil
	}
	return p.win[(p.head+int(id-p.headID))%len(p.win)]
}

// account records an acknowledged row in the metrics and the tally; a
// dead letter FORMS_DLQ newly stored is returned for onDead.
func (p *publisher) account(e *entry, now time.Time) *deadNote {
	p.m.latency.Observe(now.Sub(e.first).Seconds())
	if p.log.Enabled(context.Background(), slog.LevelDebug) {
		p.log.Debug("acked", "hash", e.hash, "stream_seq", e.seq, "duplicate", e.dup)
	}
	switch {
	case e.dead != "":
		p.tally.deadLettered.Add(1)
		p.m.deadLettered.WithLabelValues(e.dead).Inc()
		if !e.dup {
			return &deadNote{reason: e.dead, hash: e.hash, text: e.msg.Header.Get(stream.HeaderError), seq: e.seq}
		}
	case e.dup:
		p.tally.duplicates.Add(1)
		p.duplicate.Inc()
	default:
		p.tally.stored.Add(1)
		p.stored.Inc()
	}
	return nil
}

var errAckTimeout = errors.New("no acknowledgement within PUBLISH_ACK_TIMEOUT")

// run re-publishes what failed or was not acknowledged in time, until ctx
// ends: the one "publish until acknowledged" loop of streaming and
// backfill. It must outlive the stream, which drains through it.
func (p *publisher) run(ctx context.Context) error {
	reconnected := p.nc.StatusChanged(nats.CONNECTED)
	// Lost acknowledgements are found by age; one ticker, not a timer per
	// message.
	tick := time.NewTicker(max(p.ackTimeout/4, 10*time.Millisecond))
	defer tick.Stop()
	retryAt := time.NewTimer(time.Hour)
	defer retryAt.Stop()
	for {
		resendAll := false
		select {
		case <-ctx.Done():
			return nil
		case <-p.retry:
		case <-tick.C:
		case <-retryAt.C:
		case <-reconnected:
			// What was on the wire when the connection broke may or may not
			// be stored: send it again (duplicates collapse).
			resendAll = true
		}
		if next := p.resend(time.Now(), resendAll); !next.IsZero() {
			retryAt.Reset(time.Until(next))
		}
	}
}

// resend re-publishes every entry due (failed and past its backoff, or
// unacknowledged for ackTimeout, or all unacknowledged ones) and returns
// when the next failed one is due (zero: none).
func (p *publisher) resend(now time.Time, all bool) (next time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	resent := 0 // after a reconnect: said once, not once per row
	for i := range p.n {
		e := p.win[(p.head+i)%len(p.win)]
		switch {
		case e.state == sent && all:
			// Not the row's failure: the connection's. No attempt counted.
			e.state, e.err, e.retryAt = failed, nats.ErrDisconnected, now
			if !e.failedAt {
				e.failedAt = true
				p.failing++
			}
			resent++
		case e.state == sent && now.Sub(e.sent) >= p.ackTimeout:
			p.failLocked(e, errAckTimeout, now)
			e.retryAt = now
		}
		if e.state != failed {
			continue
		}
		if e.retryAt.After(now) {
			if next.IsZero() || e.retryAt.Before(next) {
				next = e.retryAt
			}
			continue
		}
		p.m.retries.Inc()
		if !errors.Is(e.err, nats.ErrDisconnected) {
			p.log.Warn("publish failed; retrying the same message", "hash", e.hash, "attempt", e.attempts+1, "error", e.err.Error())
		}
		if tooBigForForms(e.err) && e.dead == "" {
			// FORMS's own max_msg_size (an operator's limit) refuses it on
			// every try: dead-letter it, as a row over max_payload is.
			if ev, uerr := stream.Unmarshal(e.msg.Data); uerr == nil {
				p.deadLetter(e, stream.ReasonTooLarge, tooLarge(ev, fmt.Sprintf("stream %s refused the %d-byte event: %v", stream.Forms, len(e.msg.Data), e.err), p.maxPayload))
			}
		}
		// Published under p.mu: an answer to an earlier attempt could
		// otherwise free the entry while it is being sent.
		err := p.nc.PublishMsg(&e.msg)
		if errors.Is(err, nats.ErrMaxPayload) && e.dead == "" {
			// Re-sending what the server refuses as too big would stall the
			// slot for ever (a server with a smaller max_payload than the one
			// measured at start-up): dead-letter it instead.
			if ev, uerr := stream.Unmarshal(e.msg.Data); uerr == nil {
				limit := int(p.nc.MaxPayload())
				p.deadLetter(e, stream.ReasonTooLarge, tooLarge(ev, fmt.Sprintf("NATS refused the %d-byte event: %v", len(e.msg.Data), err), limit))
				err = p.nc.PublishMsg(&e.msg)
			}
		}
		e.state, e.sent = sent, now
		if err != nil {
			p.failLocked(e, err, now)
			if next.IsZero() || e.retryAt.Before(next) {
				next = e.retryAt
			}
		}
	}
	if resent > 0 {
		p.log.Info("NATS reconnected: re-sending the unacknowledged rows (duplicates collapse)", "rows", resent)
	}
	return next
}
