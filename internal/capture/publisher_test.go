package capture

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/stream"
	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

// newMsg is stream.NewMsg, faster: same subject, same headers, a body that
// protojson reads back to the same event.
func TestNewMsgIsStreamNewMsg(t *testing.T) {
	src := &formsv1.Source{Origin: "capture", CommitLsn: "0/1", CommitTime: timestamppb.Now(), Xid: 9}
	for i, s := range samples(t) {
		cols := s.Columns()
		ev := form.NewEvent(cols, nil, nil, proto.Clone(src).(*formsv1.Source), time.Now())
		got, err := newMsg("forms.submitted.public.form_submissions", ev)
		if err != nil {
			t.Fatal(err)
		}
		want, err := stream.NewMsg("forms.submitted.public.form_submissions", ev)
		if err != nil {
			t.Fatal(err)
		}
		if got.Subject != want.Subject || len(got.Header) != len(want.Header) {
			t.Fatalf("sample %d: subject %q headers %v, want %q %v", i, got.Subject, got.Header, want.Subject, want.Header)
		}
		for k := range want.Header {
			if got.Header.Get(k) != want.Header.Get(k) {
				t.Errorf("sample %d: header %s = %q, want %q", i, k, got.Header.Get(k), want.Header.Get(k))
			}
		}
		back, err := stream.Unmarshal(got.Data)
		if err != nil || !proto.Equal(back, ev) {
			t.Fatalf("sample %d: body reads back as %v (%v)", i, back, err)
		}
	}
	// What AppendJSON cannot carry goes through protojson, which refuses it.
	bad := &formsv1.FormSubmission{Hash: "h", Columns: []*formsv1.Column{{Name: "c", Value: form.Text("\xff")}}}
	if _, err := newMsg("s", bad); err == nil {
		t.Error("newMsg accepted invalid UTF-8")
	}
}
