package stream

import (
	"fmt"

	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/encoding/protojson"
)

// ContentType names the body's encoding and message type, so a reader of the
// stream knows what it is looking at.
const ContentType = "application/json; proto=cowjacket.forms.v1.FormSubmission"

// Header names set on every event.
const (
	HeaderContentType = "Content-Type"
	HeaderHash        = "Cowjacket-Hash"
)

var marshal = protojson.MarshalOptions{UseProtoNames: true}

// Newer producers may add fields; an older ticketer must still read them.
var unmarshal = protojson.UnmarshalOptions{DiscardUnknown: true}

// Marshal encodes an event as protojson.
func Marshal(ev *formsv1.FormSubmission) ([]byte, error) {
	b, err := marshal.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", ev.GetHash(), err)
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

// NewMsg is the JetStream message for an event: protojson body, Content-Type,
// and the record hash as Nats-Msg-Id so re-sends collapse in the stream.
func NewMsg(subject string, ev *formsv1.FormSubmission) (*nats.Msg, error) {
	b, err := Marshal(ev)
	if err != nil {
		return nil, err
	}
	m := nats.NewMsg(subject)
	m.Data = b
	m.Header.Set(HeaderContentType, ContentType)
	m.Header.Set(nats.MsgIdHdr, ev.GetHash())
	m.Header.Set(HeaderHash, ev.GetHash())
	return m, nil
}
