package deadletters

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/stream"
)

// Open looks up FORMS_DLQ.
func Open(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, error) {
	st, err := js.Stream(ctx, stream.DLQ)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream.DLQ, err)
	}
	return st, nil
}

// List reads every entry of FORMS_DLQ, oldest first.
func List(ctx context.Context, st jetstream.Stream) ([]*Entry, error) {
	var out []*Entry
	err := stream.ReadAll(ctx, st, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}, func(m jetstream.Msg) bool {
		md, err := m.Metadata()
		if err != nil {
			return true
		}
		out = append(out, NewEntry(md.Sequence.Stream, md.Timestamp, m.Subject(), m.Headers(), m.Data()))
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream.DLQ, err)
	}
	return out, nil
}

// Get reads one entry; (nil, nil) when there is none at seq.
func Get(ctx context.Context, st jetstream.Stream, seq uint64) (*Entry, error) {
	m, err := st.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s seq %d: %w", stream.DLQ, seq, err)
	}
	return NewEntry(m.Sequence, m.Time, m.Subject, m.Header, m.Data), nil
}

// Replace publishes dl (a replay's failure) in place of old and then
// deletes old, so `dlq list` shows the new reason; the attempts add up and
// the first failure and the original's position are kept. The publish's
// Nats-Msg-Id names old, so a retried replace (a crash between publish and
// delete) collapses into one entry.
func Replace(ctx context.Context, pub Publisher, st jetstream.Stream, old *Entry, dl stream.DeadLetter) (uint64, error) {
	od := old.DeadLetter
	Carry(&dl, od)
	dl.OrigStream, dl.OrigSeq, dl.OrigSubject = od.OrigStream, od.OrigSeq, od.OrigSubject
	dl.DeadLetteredBy = "ticketer"
	m := dl.Msg(stream.DLQTicketer, old.Data)
	m.Header.Set(nats.MsgIdHdr, "dlq:replaced:"+strconv.FormatUint(old.Seq, 10))
	m.Header.Set(stream.HeaderReplayedFrom, strconv.FormatUint(old.Seq, 10))
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	ack, err := pub.PublishMsg(pctx, m)
	if err != nil {
		return 0, fmt.Errorf("publish the updated dead letter: %w", err)
	}
	if err := st.DeleteMsg(pctx, old.Seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return ack.Sequence, fmt.Errorf("remove the old dead letter: %w", err)
	}
	return ack.Sequence, nil
}

// Carry makes dl the next failure of the request od recorded: one
// attempt more, od's first failure kept.
func Carry(dl *stream.DeadLetter, od stream.DeadLetter) {
	dl.Attempts = max(od.Attempts, 0) + 1
	if !od.FirstFailure.IsZero() {
		dl.FirstFailure = od.FirstFailure
	}
}

// Publisher publishes to FORMS_DLQ (jetstream.JetStream has it).
type Publisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}
