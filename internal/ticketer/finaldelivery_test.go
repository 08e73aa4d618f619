package ticketer

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cowjacket/formjira/internal/jirasandbox"
	"github.com/cowjacket/formjira/internal/stream"
)

// TestAuthFailureOnFinalDeliveryDeadLetters: Jira refuses the credentials
// while an event is on its last delivery (MAX_DELIVER). A Nak would never
// be redelivered, leaving a silent gap; the event must be in FORMS_DLQ
// instead (reason exhausted, the error naming the refused credentials),
// the original settled, and consuming stopped all the same.
func TestAuthFailureOnFinalDeliveryDeadLetters(t *testing.T) {
	h := newHarness(t, jirasandbox.Options{})
	h.env["MAX_DELIVER"] = "2"
	h.env["BACKOFF"] = "100ms"
	cfg, err := LoadConfig(h.getenv)
	if err != nil {
		t.Fatal(err)
	}
	ev := sampleEvents(t)[0]
	h.publish(ev)
	// Delivery 1 goes to a consumer that fails it (as a ticketer that met a
	// 5xx would); the service then gets delivery 2 of 2.
	ctx := context.Background()
	cons, err := h.js.CreateOrUpdateConsumer(ctx, stream.Forms, ConsumerConfig(cfg))
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
	h.sb.SetAuthFailure(401)
	h.start()
	h.waitFor("a dead letter", 15*time.Second, func() bool { return len(h.dlq()) > 0 })
	dl := h.dlq()
	if len(dl) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dl))
	}
	d := stream.ParseDeadLetter(nats.Header(dl[0].Header))
	if d.Reason != stream.ReasonExhausted || d.Hash != ev.GetHash() || d.Attempts != 2 || !strings.Contains(d.Error, "refused the credentials") {
		t.Errorf("dead letter reason %q hash %s attempts %d error %q; want exhausted, %s, 2, naming the refused credentials",
			d.Reason, d.Hash, d.Attempts, d.Error, ev.GetHash())
	}
	h.waitFor("nothing pending on the consumer", 5*time.Second, func() bool { return h.pending() == 0 })
	h.waitFor("consuming stopped", 5*time.Second, func() bool {
		return strings.Contains(h.logs.String(), "JIRA REFUSES THE CREDENTIALS")
	})
	if n := len(h.sb.Issues()); n != 0 {
		t.Errorf("%d tickets, want none", n)
	}
	// The claim was freed: nothing was created, so a replay starts clean.
	kv, err := h.js.KeyValue(ctx, stream.TicketsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if r, _, err := (Records{KV: kv}).Get(ctx, ev.GetHash()); err != nil || r != nil {
		t.Errorf("record %+v, %v; want none", r, err)
	}
}
