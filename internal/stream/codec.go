package stream

import (
	"fmt"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/encoding/protojson"

	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

// ContentType names the body's encoding and message type, so a reader of the
// stream knows what it is looking at.
const ContentType = "application/json; proto=cowjacket.forms.v1.FormSubmission"

// Header names. An event carries Content-Type and Nats-Msg-Id (its hash);
// a dead letter carries the hash as Cowjacket-Hash, since its Nats-Msg-Id
// is its own.
const (
	HeaderContentType = "Content-Type"
	HeaderHash        = "Cowjacket-Hash"
)

// The reference encoding: appendJSON writes the same JSON value, and is the
// one used; protojson only speaks when appendJSON cannot (it then names the
// problem).
var marshal = protojson.MarshalOptions{UseProtoNames: true}

// Newer producers may add fields; an older ticketer must still read them.
var unmarshal = protojson.UnmarshalOptions{DiscardUnknown: true}

// AppendEvent appends the event's wire form (protojson with proto field
// names) to dst. It is the one event encoder: capture's hot path reuses dst
// across rows.
func AppendEvent(dst []byte, ev *formsv1.FormSubmission) ([]byte, error) {
	b, err := appendJSON(dst, ev)
	if err == nil {
		return b, nil
	}
	// Only protojson can say what is wrong (and it might accept what the
	// fast path is unsure of).
	pb, err := marshal.Marshal(ev)
	if err != nil {
		return dst, fmt.Errorf("encode event %s: %w", ev.GetHash(), err)
	}
	return append(dst, pb...), nil
}

// Marshal encodes an event.
func Marshal(ev *formsv1.FormSubmission) ([]byte, error) {
	b, err := AppendEvent(make([]byte, 0, 2048), ev)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// Unmarshal decodes an event.
func Unmarshal(data []byte) (*formsv1.FormSubmission, error) {
	ev := &formsv1.FormSubmission{}
	if err := unmarshal.Unmarshal(data, ev); err != nil {
		return nil, fmt.Errorf("decode event: %w", err)
	}
	return ev, nil
}

// NewMsg is the JetStream message for an event: its encoding, Content-Type,
// and the record hash as Nats-Msg-Id so re-sends collapse in the stream.
func NewMsg(subject string, ev *formsv1.FormSubmission) (*nats.Msg, error) {
	b, err := Marshal(ev)
	if err != nil {
		return nil, err
	}
	return EventMsg(subject, ev.GetHash(), b), nil
}

// EventMsg is the message carrying an encoded event body with its hash.
func EventMsg(subject, hash string, body []byte) *nats.Msg {
	return &nats.Msg{Subject: subject, Data: body, Header: EventHeader(hash)}
}

// EventHeader is the header of an event with this record hash. It is kept
// to what readers need: nats.go encodes it for every publish, and the
// server scans it for every message (BENCHMARKS.md).
func EventHeader(hash string) nats.Header {
	return nats.Header{
		HeaderContentType: {ContentType},
		nats.MsgIdHdr:     {hash},
	}
}

// SetEventHeader is EventHeader(hash) in h's storage when h is one already
// (a publisher reusing its messages), a new one otherwise.
func SetEventHeader(h nats.Header, hash string) nats.Header {
	id, ct := h[nats.MsgIdHdr], h[HeaderContentType]
	if len(h) != 2 || len(id) != 1 || len(ct) != 1 || ct[0] != ContentType {
		return EventHeader(hash)
	}
	id[0] = hash
	return h
}

// HashOf is the record hash a message's header names: Cowjacket-Hash on a
// dead letter (and on events of capture before 2026-12), else an event's
// Nats-Msg-Id.
func HashOf(h nats.Header) string {
	if v := h.Get(HeaderHash); v != "" {
		return v
	}
	return h.Get(nats.MsgIdHdr)
}
