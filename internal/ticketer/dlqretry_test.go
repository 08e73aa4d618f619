package ticketer_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cowjacket/formjira/internal/jirasandbox"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/ticketer/ticketertest"
)

// TestDeadLetterPublishRetriedWithinTheDelivery: on an event's last
// delivery a Nak would strand it in FORMS, so a dead letter that cannot be
// stored at first (FORMS_DLQ gone) is retried within the delivery until it
// is stored, and only then the original terminated. The long BACKOFF makes a
// redelivery impossible within the test: the dead letter must come from
// delivery 1.
func TestDeadLetterPublishRetriedWithinTheDelivery(t *testing.T) {
	h := newHarness(t, jirasandbox.Options{})
	h.Env["MAX_DELIVER"] = "2"
	h.Env["BACKOFF"] = "60s"
	good := ticketertest.SampleEvents(t)[0]
	h.Publish(good)
	h.Start()
	h.WaitFor("the good event's ticket", 10*time.Second, func() bool { return len(h.SB.Issues()) == 1 })

	ctx := context.Background()
	if err := h.JS.DeleteStream(ctx, stream.DLQ); err != nil {
		t.Fatal(err)
	}
	bad := ticketertest.BadDepartment(t)
	h.Publish(bad)
	time.Sleep(1500 * time.Millisecond) // publishes to the missing stream fail meanwhile
	if _, err := stream.EnsureDLQ(ctx, h.JS, stream.Config{}); err != nil {
		t.Fatal(err)
	}
	h.WaitFor("the dead letter", 15*time.Second, func() bool { return len(h.DLQ()) == 1 })
	d := stream.ParseDeadLetter(nats.Header(h.DLQ()[0].Header))
	if d.Hash != bad.GetHash() || d.Reason != stream.ReasonUnmappable || d.Attempts != 1 {
		t.Errorf("dead letter hash %s reason %q attempts %d, want %s unmappable 1", d.Hash, d.Reason, d.Attempts, bad.GetHash())
	}
	h.WaitFor("nothing pending on the consumer", 10*time.Second, func() bool { return h.Pending() == 0 })
	if n := len(h.SB.Issues()); n != 1 {
		t.Errorf("%d tickets, want 1", n)
	}
}
