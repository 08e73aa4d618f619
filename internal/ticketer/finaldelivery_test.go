package ticketer_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cowjacket/formjira/internal/jirasandbox"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/ticketer"
	"github.com/cowjacket/formjira/internal/ticketer/ticketertest"
)

// TestRefusedCredentialsCostNoDelivery: Jira refusing the credentials is
// no failure of the events (issue 14): however many deliveries pass while
// it lasts, nothing is dead-lettered, consuming stops, and once the
// credentials work again every event gets its ticket with no operator
// action. (Earlier, an event on its last delivery was dead-lettered here.)
func TestRefusedCredentialsCostNoDelivery(t *testing.T) {
	h := newHarness(t, jirasandbox.Options{})
	h.Env["MAX_DELIVER"] = "2"
	h.Env["BACKOFF"] = "100ms"
	cfg, err := ticketer.LoadConfig(h.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	evs := ticketertest.SampleEvents(t)[:3]
	h.Publish(evs...)
	// Two deliveries go to a consumer that fails them (as a ticketer that
	// met 5xx would): by count, every event has used MAX_DELIVER.
	ctx := context.Background()
	cons, err := h.JS.CreateOrUpdateConsumer(ctx, stream.Forms, cfg.ConsumerConfig())
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		for range evs {
			msg, err := cons.Next()
			if err != nil {
				t.Fatal(err)
			}
			if err := msg.NakWithDelay(10 * time.Millisecond); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Jira refuses the credentials on create (the start-up check passed).
	h.Fault(func(r *http.Request, _ []byte) int {
		if r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/issue") {
			return http.StatusUnauthorized
		}
		return 0
	})
	h.Start()
	h.WaitFor("consuming stopped", 15*time.Second, func() bool {
		return strings.Contains(h.Logs.String(), "JIRA REFUSES THE CREDENTIALS")
	})
	time.Sleep(time.Second)
	if dl := h.DLQ(); len(dl) != 0 || len(h.SB.Issues()) != 0 {
		t.Fatalf("%d dead letters, %d tickets while Jira refuses the credentials; want none", len(dl), len(h.SB.Issues()))
	}
	h.Fault(nil)
	h.WaitFor("every ticket once Jira accepts the credentials", 60*time.Second, func() bool { return len(h.SB.Issues()) == len(evs) })
	h.AssertOneTicketPerHash(evs)
	if dl := h.DLQ(); len(dl) != 0 {
		t.Errorf("%d dead letters, want none", len(dl))
	}
}
