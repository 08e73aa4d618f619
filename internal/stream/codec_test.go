package stream

import (
	"testing"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/cowjacket/formjira/internal/form"
	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

// NewMsg carries the fast encoding with the event's headers, and the body
// reads back (protojson) as the same event.
func TestNewMsg(t *testing.T) {
	samples, err := form.Samples()
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range samples {
		ev := sampleEvent(s, i)
		m, err := NewMsg("forms.submitted.public.form_submissions", ev)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{HeaderContentType: ContentType, nats.MsgIdHdr: ev.GetHash()}
		if m.Subject != "forms.submitted.public.form_submissions" || len(m.Header) != len(want) {
			t.Fatalf("sample %d: subject %q headers %v", i, m.Subject, m.Header)
		}
		for k, v := range want {
			if m.Header.Get(k) != v {
				t.Errorf("sample %d: header %s = %q, want %q", i, k, m.Header.Get(k), v)
			}
		}
		fast, err := appendJSON(nil, ev)
		if err != nil || string(fast) != string(m.Data) {
			t.Fatalf("sample %d: body is not the fast encoding (%v)", i, err)
		}
		back, err := Unmarshal(m.Data)
		if err != nil || !proto.Equal(back, ev) {
			t.Fatalf("sample %d: body reads back as %v (%v)", i, back, err)
		}
	}
}

// What the fast path cannot carry goes through protojson: refused when
// protojson refuses it too, with the reason.
func TestAppendEventFallsBackToProtojson(t *testing.T) {
	bad := &formsv1.FormSubmission{Hash: "h", Columns: []*formsv1.Column{{Name: "c", Value: form.Text("\xff")}}}
	if _, err := NewMsg("s", bad); err == nil {
		t.Error("NewMsg accepted invalid UTF-8")
	}
	if b, err := AppendEvent([]byte("keep"), bad); err == nil || string(b) != "keep" {
		t.Errorf("AppendEvent on a refused event: %q, %v; want dst unchanged and an error", b, err)
	}
}

// SetEventHeader reuses an event header and replaces anything else.
func TestSetEventHeader(t *testing.T) {
	h := EventHeader("a")
	if got := SetEventHeader(h, "b"); len(got) != 2 || got.Get(nats.MsgIdHdr) != "b" || got.Get(HeaderContentType) != ContentType || HashOf(got) != "b" {
		t.Errorf("reused header %v", got)
	}
	dl := nats.Header{HeaderReason: {"x"}, nats.MsgIdHdr: {"dlq:1"}, HeaderHash: {"a"}}
	if HashOf(dl) != "a" {
		t.Errorf("HashOf(dead letter) = %q, want its Cowjacket-Hash", HashOf(dl))
	}
	got := SetEventHeader(dl, "c")
	if len(got) != 2 || got.Get(nats.MsgIdHdr) != "c" || got.Get(HeaderReason) != "" || dl.Get(nats.MsgIdHdr) != "dlq:1" {
		t.Errorf("from a dead-letter header: %v (original now %v)", got, dl)
	}
}
