package ticketer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cowjacket/formjira/internal/jirasandbox"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/ticketer/ticketertest"
)

// TestTransientFailuresExhaustMaxDeliver: one event makes Jira answer 5xx
// (a request Jira cannot handle) while Jira works for the others: the
// circuit stays closed (its health probe succeeds), the good events get
// their tickets, and after MAX_DELIVER failed deliveries the bad one is in
// FORMS_DLQ with reason exhausted and attempts = MAX_DELIVER; its original
// is terminated, after the dead letter was stored.
func TestTransientFailuresExhaustMaxDeliver(t *testing.T) {
	h := newHarness(t, jirasandbox.Options{})
	h.Env["MAX_DELIVER"] = "2"
	h.Env["BACKOFF"] = "200ms"
	h.Env["RETRY_WINDOW"] = "300ms"
	h.Env["ACK_WAIT"] = "5s"
	h.Env["JIRA_TIMEOUT"] = "1s"
	evs := ticketertest.SampleEvents(t)[:5]
	ev := evs[0]
	h.Fault(func(r *http.Request, body []byte) int {
		if strings.Contains(r.URL.Path, "/issue") && bytes.Contains(body, []byte(ev.GetHash())) {
			return http.StatusInternalServerError
		}
		return 0
	})

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

	h.Publish(evs...)
	h.Start()
	var term terminated
	select {
	case term = <-terms:
	case <-time.After(40 * time.Second):
		t.Fatal("the original was not terminated within 40s")
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
	h.WaitFor("the good events' tickets", 20*time.Second, func() bool { return len(h.SB.Issues()) == ticketertest.DistinctHashes(evs[1:]) })
	h.AssertOneTicketPerHash(evs[1:])
	h.WaitFor("nothing pending on the consumer", 5*time.Second, func() bool { return h.Pending() == 0 })
	if strings.Contains(h.Logs.String(), "JIRA UNREACHABLE") {
		t.Error("one failing request opened the circuit")
	}
	select {
	case a := <-terms:
		t.Errorf("terminated twice: %+v", a)
	case <-time.After(300 * time.Millisecond):
	}
}
