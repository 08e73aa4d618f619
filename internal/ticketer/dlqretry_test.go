package ticketer

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cowjacket/formjira/internal/jirasandbox"
	"github.com/cowjacket/formjira/internal/stream"
)

// TestDeadLetterPublishRetriedWithinTheDelivery: on an event's last
// delivery a Nak would strand it in FORMS, so a dead letter that cannot be
// stored at first (FORMS_DLQ gone) is retried within the delivery until it
// is stored, and only then the original terminated. The long BACKOFF makes a
// redelivery impossible within the test: the dead letter must come from
// delivery 1.
func TestDeadLetterPublishRetriedWithinTheDelivery(t *testing.T) {
	h := newHarness(t, jirasandbox.Options{})
	h.env["MAX_DELIVER"] = "2"
	h.env["BACKOFF"] = "60s"
	good := sampleEvents(t)[0]
	h.publish(good)
	h.start()
	h.waitFor("the good event's ticket", 10*time.Second, func() bool { return len(h.sb.Issues()) == 1 })

	ctx := context.Background()
	if err := h.js.DeleteStream(ctx, stream.DLQ); err != nil {
		t.Fatal(err)
	}
	bad := badDepartment(t)
	h.publish(bad)
	time.Sleep(1500 * time.Millisecond) // publishes to the missing stream fail meanwhile
	if _, err := stream.EnsureDLQ(ctx, h.js, stream.Config{}); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the dead letter", 15*time.Second, func() bool { return len(h.dlq()) == 1 })
	d := stream.ParseDeadLetter(nats.Header(h.dlq()[0].Header))
	if d.Hash != bad.GetHash() || d.Reason != stream.ReasonUnmappable || d.Attempts != 1 {
		t.Errorf("dead letter hash %s reason %q attempts %d, want %s unmappable 1", d.Hash, d.Reason, d.Attempts, bad.GetHash())
	}
	h.waitFor("nothing pending on the consumer", 10*time.Second, func() bool { return h.pending() == 0 })
	if n := len(h.sb.Issues()); n != 1 {
		t.Errorf("%d tickets, want 1", n)
	}
}
