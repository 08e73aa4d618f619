// Package audit records what operators do in the console — who, what,
// when, with what outcome — in stream FORMS_AUDIT, durably (an action is
// reported done only after its entry is stored), and reads it back for the
// console's audit page.
package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/stream"
)

// Entry is one recorded action.
type Entry struct {
	Seq     uint64    `json:"seq,omitempty"` // its FORMS_AUDIT sequence (when read back)
	At      time.Time `json:"at"`
	Who     string    `json:"who"`  // user name or e-mail
	Role    string    `json:"role"` // viewer or operator
	Via     string    `json:"via"`  // how they signed in: password, oidc, basic (API)
	From    string    `json:"from,omitempty"`
	Action  string    `json:"action"` // e.g. "dlq.replay"
	Target  string    `json:"target"` // e.g. "FORMS_DLQ 7, 9" or "FORMS_DLQ (all)"
	Outcome []string  `json:"outcome"`
	Created int       `json:"created"`
	Skipped int       `json:"skipped"`
	Failing int       `json:"failing"`
	Error   string    `json:"error,omitempty"`
}

// Publisher stores messages (jetstream.JetStream has it).
type Publisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// Log writes and reads FORMS_AUDIT.
type Log struct {
	Pub    Publisher
	Stream jetstream.Stream
}

// Record stores e and returns its sequence once JetStream acknowledged it.
func (l *Log) Record(ctx context.Context, e Entry) (uint64, error) {
	if e.At.IsZero() {
		e.At = time.Now().UTC()
	}
	b, err := json.Marshal(e)
	if err != nil {
		return 0, err
	}
	m := nats.NewMsg(stream.AuditSubject(e.Action))
	m.Data = b
	m.Header.Set("Content-Type", "application/json")
	// The write outlives a client that went away.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	ack, err := l.Pub.PublishMsg(pctx, m)
	if err != nil {
		return 0, fmt.Errorf("record in %s: %w", stream.Audit, err)
	}
	return ack.Sequence, nil
}

// Latest is the last n entries, newest first.
func (l *Log) Latest(ctx context.Context, n int) ([]Entry, error) {
	info, err := l.Stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream.Audit, err)
	}
	out := []Entry{}
	if info.State.Msgs == 0 {
		return out, nil
	}
	for seq := info.State.LastSeq; seq >= info.State.FirstSeq && seq > 0 && len(out) < n; seq-- {
		m, err := l.Stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s seq %d: %w", stream.Audit, seq, err)
		}
		var e Entry
		if json.Unmarshal(m.Data, &e) != nil {
			continue
		}
		e.Seq = m.Sequence
		out = append(out, e)
	}
	return out, nil
}
