package ticketer_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cowjacket/formjira/internal/jirasandbox"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/ticketer"
	"github.com/cowjacket/formjira/internal/ticketer/ticketertest"
)

// TestAuthFailureOnFinalDeliveryDeadLetters: Jira refuses the credentials
// while an event is on its last delivery (MAX_DELIVER). A Nak would never
// be redelivered, leaving a silent gap; the event must be in FORMS_DLQ
// instead (reason exhausted, the error naming the refused credentials),
// the original settled, and consuming stopped all the same.
func TestAuthFailureOnFinalDeliveryDeadLetters(t *testing.T) {
	h := newHarness(t, jirasandbox.Options{})
	h.Env["MAX_DELIVER"] = "2"
	h.Env["BACKOFF"] = "100ms"
	cfg, err := ticketer.LoadConfig(h.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	ev := ticketertest.SampleEvents(t)[0]
	h.Publish(ev)
	// Delivery 1 goes to a consumer that fails it (as a ticketer that met a
	// 5xx would); the service then gets delivery 2 of 2.
	ctx := context.Background()
	cons, err := h.JS.CreateOrUpdateConsumer(ctx, stream.Forms, cfg.ConsumerConfig())
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cons.Next()
	if err != nil {
		t.Fatal(err)
	}
	if err := msg.Nak(); err != nil {
		t.Fatal(err)
	}
	h.SB.SetAuthFailure(401)
	h.Start()
	h.WaitFor("a dead letter", 15*time.Second, func() bool { return len(h.DLQ()) > 0 })
	dl := h.DLQ()
	if len(dl) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dl))
	}
	d := stream.ParseDeadLetter(nats.Header(dl[0].Header))
	if d.Reason != stream.ReasonExhausted || d.Hash != ev.GetHash() || d.Attempts != 2 || !strings.Contains(d.Error, "refused the credentials") {
		t.Errorf("dead letter reason %q hash %s attempts %d error %q; want exhausted, %s, 2, naming the refused credentials",
			d.Reason, d.Hash, d.Attempts, d.Error, ev.GetHash())
	}
	h.WaitFor("nothing pending on the consumer", 5*time.Second, func() bool { return h.Pending() == 0 })
	h.WaitFor("consuming stopped", 5*time.Second, func() bool {
		return strings.Contains(h.Logs.String(), "JIRA REFUSES THE CREDENTIALS")
	})
	if n := len(h.SB.Issues()); n != 0 {
		t.Errorf("%d tickets, want none", n)
	}
	// The claim was freed: nothing was created, so a replay starts clean.
	kv, err := h.JS.KeyValue(ctx, stream.TicketsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if r, _, err := (stream.Tickets{KV: kv}).Get(ctx, ev.GetHash()); err != nil || r != nil {
		t.Errorf("record %+v, %v; want none", r, err)
	}
}
