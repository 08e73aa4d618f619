package ticketer_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cowjacket/formjira/internal/jirasandbox"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/ticketer/ticketertest"
)

// TestTransientFailuresExhaustMaxDeliver: Jira answers only 5xx; after
// MAX_DELIVER deliveries the event is in FORMS_DLQ with reason exhausted
// and attempts = MAX_DELIVER, and the original is terminated (not acked,
// not left pending), after the dead letter was stored.
func TestTransientFailuresExhaustMaxDeliver(t *testing.T) {
	h := newHarness(t, jirasandbox.Options{Error5xxRate: 1.0})
	h.Env["MAX_DELIVER"] = "2"
	h.Env["BACKOFF"] = "200ms"
	h.Env["RETRY_WINDOW"] = "300ms"
	h.Env["ACK_WAIT"] = "5s"

	// The server's advisory of the termination; when it comes, the dead
	// letter must already be in FORMS_DLQ.
	type terminated struct {
		StreamSeq uint64 `json:"stream_seq"`
		Reason    string `json:"reason"`
		dlqMsgs   uint64
	}
	terms := make(chan terminated, 4)
	sub, err := h.NC.Subscribe("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED."+stream.Forms+"."+stream.TicketerConsumer, func(m *nats.Msg) {
		var a terminated
		_ = json.Unmarshal(m.Data, &a)
		if st, err := h.JS.Stream(context.Background(), stream.DLQ); err == nil {
			if info, err := st.Info(context.Background()); err == nil {
				a.dlqMsgs = info.State.Msgs
			}
		}
		terms <- a
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })

	ev := ticketertest.SampleEvents(t)[0]
	h.Publish(ev)
	h.Start()
	var term terminated
	select {
	case term = <-terms:
	case <-time.After(20 * time.Second):
		t.Fatal("the original was not terminated within 20s")
	}
	if term.dlqMsgs != 1 {
		t.Errorf("FORMS_DLQ held %d messages when the original was terminated, want 1 (dead letter first)", term.dlqMsgs)
	}
	dl := h.DLQ()
	if len(dl) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dl))
	}
	d := stream.ParseDeadLetter(nats.Header(dl[0].Header))
	if d.Reason != stream.ReasonExhausted || d.Attempts != 2 || d.Hash != ev.GetHash() || d.OrigSeq != 1 || term.StreamSeq != 1 {
		t.Errorf("dead letter reason %q attempts %d hash %s orig_seq %d (terminated seq %d); want exhausted, 2, %s, 1",
			d.Reason, d.Attempts, d.Hash, d.OrigSeq, term.StreamSeq, ev.GetHash())
	}
	if d.Error == "" || d.FirstFailure.IsZero() || !d.LastFailure.After(d.FirstFailure) {
		t.Errorf("dead letter lacks the error or the failure times: %+v", d)
	}
	if n := len(h.SB.Issues()); n != 0 {
		t.Errorf("%d tickets, want none", n)
	}
	h.WaitFor("nothing pending on the consumer", 5*time.Second, func() bool { return h.Pending() == 0 })
	select {
	case a := <-terms:
		t.Errorf("terminated twice: %+v", a)
	case <-time.After(300 * time.Millisecond):
	}
}
