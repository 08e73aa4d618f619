package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/jirasandbox"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/ticketer/ticketertest"
	"github.com/cowjacket/formjira/internal/trace"
	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

// TestTrace follows four requests by every kind of query: Sara Curtis
// (ticketed), Ahmed Byrne (dead-lettered: a department Jira does not
// offer), Rory Haddad (on its way: Jira fails every create of hers) and a
// row that was never captured.
func TestTrace(t *testing.T) {
	h := newHarness(t, jirasandbox.Options{})
	samples, err := form.Samples()
	if err != nil {
		t.Fatal(err)
	}
	sara := ticketertest.RowEvent(samples[0].Columns(), 1)
	ahmed := ticketertest.RowEvent(form.WithValue(samples[1].Columns(), "departmentname", form.Text("Astrology")), 2)
	rory := ticketertest.RowEvent(samples[2].Columns(), 3)
	h.Env["RETRY_WINDOW"] = "2s" // Rory's failing delivery ends (and is recorded) soon
	h.Publish(sara, ahmed)
	h.Start()
	h.WaitFor("1 ticket and 1 dead letter", 20*time.Second, func() bool { return len(h.SB.Issues()) == 1 && len(h.DLQ()) == 1 })
	// Jira fails every create carrying Rory's request (and only hers).
	h.Fault(func(r *http.Request, body []byte) int {
		if r.Method == http.MethodPost && strings.Contains(string(body), "Rory Haddad") {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	h.Publish(rory)
	key := h.SB.Issues()[0].Key

	traceJSON := func(q string) *trace.Result {
		t.Helper()
		var res trace.Result
		out := h.mustCmd("trace", q, "--json")
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("trace %s --json: %v\n%s", q, err, out)
		}
		return &res
	}
	h.WaitFor("Rory's delivery failing, recorded in the index", 30*time.Second, func() bool {
		res := traceJSON("rory.haddad@example.com")
		return len(res.Journeys) == 1 && res.Journeys[0].Delivery.LastError != ""
	})

	for _, tc := range []struct {
		query, kind string
		ev          *formsv1.FormSubmission
		outcome     string
	}{
		{sara.GetHash(), trace.KindHash, sara, trace.Ticketed},
		{sara.GetHash()[:8], trace.KindHash, sara, trace.Ticketed},
		{"Sara.Curtis@Example.com", trace.KindEmail, sara, trace.Ticketed},
		{"curtis", trace.KindName, sara, trace.Ticketed},
		{"Sara Curtis", trace.KindName, sara, trace.Ticketed},
		{"id=1", trace.KindID, sara, trace.Ticketed},
		{key, trace.KindJiraKey, sara, trace.Ticketed},
		{ahmed.GetHash()[:12], trace.KindHash, ahmed, trace.DeadLettered},
		{"ahmed.byrne@example.com", trace.KindEmail, ahmed, trace.DeadLettered},
		{"Byrne", trace.KindName, ahmed, trace.DeadLettered},
		{"id=2", trace.KindID, ahmed, trace.DeadLettered},
		{rory.GetHash(), trace.KindHash, rory, trace.OnItsWay},
		{"rory.haddad@example.com", trace.KindEmail, rory, trace.OnItsWay},
		{"haddad", trace.KindName, rory, trace.OnItsWay},
		{"id=3", trace.KindID, rory, trace.OnItsWay},
	} {
		t.Run(tc.kind+"/"+tc.query, func(t *testing.T) {
			res := traceJSON(tc.query)
			if res.Query.Kind != tc.kind || len(res.Journeys) != 1 {
				t.Fatalf("kind %s, %d journeys: %+v", res.Query.Kind, len(res.Journeys), res)
			}
			j := res.Journeys[0]
			if j.Hash != tc.ev.GetHash() || j.Outcome != tc.outcome {
				t.Fatalf("journey of %s is %s, want %s of %s", j.Hash, j.Outcome, tc.outcome, tc.ev.GetHash())
			}
			if j.Row == nil || j.Row.Table != "public.form_submissions" || j.Row.PrimaryKey == "" || j.Row.CommitLSN == "" || j.Row.CommitTime.IsZero() {
				t.Errorf("row %+v", j.Row)
			}
			if j.Forms == nil || j.Forms.Seq == 0 || j.Forms.Subject != ticketertest.FormSubject || j.Forms.Stored.IsZero() {
				t.Errorf("forms %+v", j.Forms)
			}
			switch tc.outcome {
			case trace.Ticketed:
				if j.Ticket == nil || j.Ticket.Key != key || j.Ticket.URL != h.URL+"/browse/"+key || j.Ticket.Latency <= 0 || j.Delivery.Deliveries < 1 {
					t.Errorf("ticket %+v, delivery %+v", j.Ticket, j.Delivery)
				}
			case trace.DeadLettered:
				dl := j.DeadLetter
				if dl == nil || dl.Reason != stream.ReasonUnmappable || !strings.Contains(strings.Join(dl.FieldErrors, " "), "customfield_10073 (Department)") ||
					dl.Replay != fmt.Sprintf("ticketer dlq replay %d", dl.Seq) {
					t.Errorf("dead letter %+v", dl)
				}
			case trace.OnItsWay:
				if j.OnItsWay == nil || j.OnItsWay.State == "" || j.Delivery.Deliveries < 1 || !strings.Contains(j.Delivery.LastError, "503") {
					t.Errorf("on its way %+v, delivery %+v", j.OnItsWay, j.Delivery)
				}
			}
		})
	}

	// Never captured: nothing matches; capture's status is told (none runs here).
	for _, q := range []string{"id=999", "nobody@example.com", "Zebedee", "0123456789abcdef"} {
		res := traceJSON(q)
		if len(res.Journeys) != 0 || res.NotCaptured == nil || !strings.Contains(res.NotCaptured.Note, "not captured") ||
			!strings.Contains(res.NotCaptured.Note, "no capture is running") {
			t.Errorf("trace %s: %+v", q, res)
		}
	}
	// A Jira key is no row: the note says the index does not know it.
	if res := traceJSON("CP-9999"); len(res.Journeys) != 0 || res.NotCaptured == nil || !strings.Contains(res.NotCaptured.Note, "no request in the index has ticket CP-9999") {
		t.Errorf("trace CP-9999: %+v", res)
	}

	// The text: one journey per request, the ticket's link, the replay command.
	out := h.mustCmd("trace", "Sara", "Curtis")
	for _, want := range []string{"Sara Curtis <sara.curtis@example.com>", "TICKETED", "committed", "stored in FORMS", "ticket created", h.URL + "/browse/" + key} {
		if !strings.Contains(out, want) {
			t.Errorf("trace Sara Curtis lacks %q", want)
		}
	}
	out = h.mustCmd("trace", "id=2")
	for _, want := range []string{"DEAD LETTERED", "customfield_10073 (Department)", "Astrology", "ticketer dlq replay "} {
		if !strings.Contains(out, want) {
			t.Errorf("trace id=2 lacks %q", want)
		}
	}
	out = h.mustCmd("trace", "id=999")
	if !strings.Contains(out, "not captured") {
		t.Errorf("trace id=999: %s", out)
	}
	if _, err := h.cmd("trace"); err == nil {
		t.Error("trace without a query succeeded")
	}
}
