package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/cowjacket/formjira/internal/pgcdc"
	"github.com/cowjacket/formjira/internal/stream"
	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

// publisher is the pgcdc.Sink that delivers rows to JetStream and tracks
// the LSN the slot may be confirmed to (design guarantee 1).
//
// Rows are published asynchronously, at most maxInFlight unacknowledged.
// The window holds them in WAL order, with commit markers between them; the
// acker walks the window from its head, so the confirmed LSN moves to a
// commit's end only after every row before that marker was acknowledged.
// A failed acknowledgement is re-published (same Nats-Msg-Id) until it
// succeeds: nothing is skipped, so nothing is confirmed past it.
type publisher struct {
	js          jetstream.JetStream
	subject     string
	maxPayload  int
	ackTimeout  time.Duration
	log         *slog.Logger
	m           *metrics
	slots       chan struct{} // one token per unacknowledged row
	wake        chan struct{}
	confirmed   atomic.Uint64
	paused      atomic.Bool // new publishes wait while a failed row is retried
	mu          sync.Mutex
	window      []*entry
	retryPause  time.Duration
	maxInFlight int
	// onDead, when set, hears of every dead letter FORMS_DLQ stored.
	onDead func(reason, hash, text string, dlqSeq uint64)
}

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

func newPublisher(js jetstream.JetStream, subject string, maxPayload, maxInFlight int, ackTimeout time.Duration, log *slog.Logger, m *metrics) *publisher {
	return &publisher{
		js: js, subject: subject, maxPayload: maxPayload, ackTimeout: ackTimeout, log: log, m: m,
		slots: make(chan struct{}, maxInFlight), wake: make(chan struct{}, 1),
		retryPause: 250 * time.Millisecond, maxInFlight: maxInFlight,
	}
}

// message turns a decoded row into the FORMS message, or into a dead letter
// for FORMS_DLQ when it cannot be an event.
func (p *publisher) message(row pgcdc.Decoded) (msg *nats.Msg, reason string) {
	ev := row.Event
	if row.Err != nil {
		return deadLetter(ev, stream.ReasonUndecodable, row.Err.Error()), stream.ReasonUndecodable
	}
	msg, err := newMsg(p.subject, ev)
	if err != nil {
		return deadLetter(ev, stream.ReasonUndecodable, err.Error()), stream.ReasonUndecodable
	}
	if size := msgSize(msg); p.maxPayload > 0 && size > p.maxPayload {
		text := fmt.Sprintf("event is %d bytes, the NATS server's max_payload is %d", size, p.maxPayload)
		return tooLarge(ev, text, p.maxPayload), stream.ReasonTooLarge
	}
	return msg, ""
}

// keepBytes is how much of an oversized value a too_large dead letter keeps.
const keepBytes = 1024

// tooLarge is the dead letter for an event bigger than max payload: every
// value that is small is kept as it is, and each big one is cut to its first
// keepBytes as a raw value saying how long it was (raw, so nobody mistakes
// it for the real text). If that is still too big, only what identifies the
// row (hash, source, primary key) is kept.
func tooLarge(ev *formsv1.FormSubmission, text string, maxPayload int) *nats.Msg {
	slim := proto.Clone(ev).(*formsv1.FormSubmission)
	var cut []string
	for _, c := range slim.Columns {
		var s string
		switch v := c.GetValue().GetKind().(type) {
		case *formsv1.Value_Text:
			s = v.Text
		case *formsv1.Value_Raw:
			s = v.Raw
		default:
			continue
		}
		if len(s) <= keepBytes {
			continue
		}
		cut = append(cut, c.GetName())
		kept := strings.ToValidUTF8(s[:keepBytes], "")
		c.Value = &formsv1.Value{Kind: &formsv1.Value_Raw{Raw: fmt.Sprintf("%s… [truncated by capture: %d bytes]", kept, len(s))}}
	}
	if len(cut) > 0 {
		text += "; truncated to " + strconv.Itoa(keepBytes) + " bytes: " + strings.Join(cut, ", ")
	}
	m := deadLetter(slim, stream.ReasonTooLarge, text)
	if msgSize(m) > maxPayload {
		slim.Columns = nil
		m = deadLetter(slim, stream.ReasonTooLarge, text+"; values dropped")
	}
	return m
}

// newMsg is stream.NewMsg with the body written by pgcdc.AppendJSON, which
// is several times cheaper than protojson per row; an event it cannot
// encode goes through protojson, which then says why.
func newMsg(subject string, ev *formsv1.FormSubmission) (*nats.Msg, error) {
	body, err := pgcdc.AppendJSON(make([]byte, 0, 2048), ev)
	if err != nil {
		return stream.NewMsg(subject, ev)
	}
	h := ev.GetHash()
	return &nats.Msg{Subject: subject, Data: body, Header: nats.Header{
		stream.HeaderContentType: {stream.ContentType},
		nats.MsgIdHdr:            {h},
		stream.HeaderHash:        {h},
	}}, nil
}

func deadLetter(ev *formsv1.FormSubmission, reason, text string) *nats.Msg {
	body, err := stream.Marshal(ev)
	if err != nil {
		ev = proto.Clone(ev).(*formsv1.FormSubmission)
		ev.Columns = nil
		body, _ = stream.Marshal(ev)
	}
	now := time.Now()
	m := stream.DeadLetter{
		Reason: reason, Error: text, Attempts: 1, Hash: ev.GetHash(),
		FirstFailure: now, LastFailure: now, DeadLetteredBy: "capture",
	}.Msg(stream.DLQCapture, body)
	// The row is re-read after a crash before confirmation: a stable id
	// makes that re-send collapse instead of adding a second dead letter.
	m.Header.Set(nats.MsgIdHdr, "dlq:capture:"+ev.GetHash())
	return m
}

func msgSize(m *nats.Msg) int {
	n := len(m.Subject) + len(m.Data) + 64
	for k, vs := range m.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// Publish implements pgcdc.Sink.
func (p *publisher) Publish(ctx context.Context, row pgcdc.Decoded) error {
	msg, reason := p.message(row)
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	for p.paused.Load() {
		select {
		case <-ctx.Done():
			<-p.slots
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
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

// Drain implements pgcdc.Sink.
func (p *publisher) Drain(ctx context.Context) error {
	for {
		p.mu.Lock()
		n := len(p.window)
		p.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d entries unacknowledged: %w", n, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
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
		ack, err := p.await(ctx, e)
		for attempt := 2; err != nil; attempt++ {
			if ctx.Err() != nil {
				return nil
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
			p.paused.Store(true)
			p.m.retries.Inc()
			p.log.Warn("publish failed; retrying the same message", "hash", e.hash, "attempt", attempt, "error", err.Error())
			if attempt > 2 {
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(min(p.retryPause*time.Duration(attempt-2), 2*time.Second)):
				}
			}
			actx, cancel := context.WithTimeout(ctx, p.ackTimeout)
			ack, err = p.js.PublishMsg(actx, e.msg)
			cancel()
		}
		p.paused.Store(false)
		p.pop()
		<-p.slots
		p.m.inFlight.Set(float64(len(p.slots)))
		p.m.latency.Observe(time.Since(e.sent).Seconds())
		result := "stored"
		if ack.Duplicate {
			result = "duplicate"
		}
		if e.dead != "" {
			p.m.deadLettered.WithLabelValues(e.dead).Inc()
			if p.onDead != nil && !ack.Duplicate {
				p.onDead(e.dead, e.hash, e.msg.Header.Get(stream.HeaderError), ack.Sequence)
			}
		} else {
			p.m.published.WithLabelValues(result).Inc()
		}
		p.log.Debug("acked", "hash", e.hash, "stream_seq", ack.Sequence, "duplicate", ack.Duplicate)
	}
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
