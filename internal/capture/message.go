package capture

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/cowjacket/formjira/internal/stream"
	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

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
