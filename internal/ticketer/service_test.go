package ticketer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/jira"
	"github.com/cowjacket/formjira/internal/jirasandbox"
	"github.com/cowjacket/formjira/internal/mapping"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/testsupport"
	"github.com/cowjacket/formjira/internal/ticket"
	"github.com/cowjacket/formjira/internal/ticketer/ticketertest"
	"github.com/cowjacket/formjira/internal/ticketing"
	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

func TestSamplesBecome197Tickets(t *testing.T) {
	h := newHarness(t, jirasandbox.Options{})
	evs := ticketertest.SampleEvents(t)
	if len(evs) != 200 || ticketertest.DistinctHashes(evs) != 197 {
		t.Fatalf("%d samples, %d distinct; want 200 and 197", len(evs), ticketertest.DistinctHashes(evs))
	}
	h.Publish(evs...)
	stop := h.Start()
	h.WaitFor("197 tickets", 60*time.Second, func() bool { return len(h.SB.Issues()) >= 197 })
	time.Sleep(300 * time.Millisecond)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	h.AssertOneTicketPerHash(evs)
	if d := h.DLQ(); len(d) != 0 {
		t.Errorf("%d dead letters, want none: %v", len(d), d[0].Header)
	}
	t.Log(h.Logs.String()[:min(2000, len(h.Logs.String()))])
}

func optionValues(t *testing.T, v any) []string {
	t.Helper()
	var out []string
	switch x := v.(type) {
	case map[string]any:
		s, _ := x["value"].(string)
		out = append(out, s)
	case []any:
		for _, e := range x {
			out = append(out, optionValues(t, e)...)
		}
	default:
		t.Errorf("option field is %T %v", v, v)
	}
	return out
}

func TestSaraCurtisTicketFields(t *testing.T) {
	h := newHarness(t, jirasandbox.Options{})
	evs := ticketertest.SampleEvents(t)
	h.Publish(evs[:5]...)
	h.Start()
	h.WaitFor("5 tickets", 30*time.Second, func() bool { return len(h.SB.Issues()) >= 5 })
	got := h.SB.IssueByLabel("cowjacket-" + strings.ToLower(evs[0].GetHash()))
	if len(got) != 1 {
		t.Fatalf("%d tickets for Sara Curtis, want 1", len(got))
	}
	f := got[0].Fields
	want := map[string]string{
		"customfield_10070": "Sara Curtis",
		"customfield_10071": "Sara",
		"customfield_10072": "08196712915",
		"customfield_10074": "Data Engineer",
		"customfield_10075": "sara.curtis@example.com",
		"customfield_10076": "5540221908", // cost center: text, leading digits kept
		"customfield_10080": "2025-10-28",
		"customfield_10081": "2025-11-22",
		"customfield_10083": "2025-10-24",
	}
	for id, w := range want {
		if s, ok := f[id].(string); !ok || s != w {
			t.Errorf("%s = %#v, want %q", id, f[id], w)
		}
	}
	if v := optionValues(t, f["customfield_10073"]); !slices.Equal(v, []string{"Finance"}) {
		t.Errorf("department = %v", v)
	}
	if v := optionValues(t, f["customfield_10079"]); !slices.Equal(v, []string{"Temporary use (three months or less)"}) {
		t.Errorf("timeframe = %v", v)
	}
	if v := optionValues(t, f["customfield_10077"]); !slices.Equal(v, []string{"New extension including new cabling and socket"}) {
		t.Errorf("lines = %v", v)
	}
	if v := optionValues(t, f["customfield_10078"]); !slices.Equal(v, []string{"Handset speaker phone", "Mobile phone", "SIM card only"}) {
		t.Errorf("handsets = %v", v)
	}
	if s := got[0].Summary(); !strings.Contains(s, "Sara Curtis") || !strings.Contains(s, "Finance") {
		t.Errorf("summary = %q", s)
	}
	b, _ := json.Marshal(f["customfield_10082"])
	if !strings.Contains(string(b), "Replace faulty handset") {
		t.Errorf("comments = %s", b)
	}
	if !slices.Contains(got[0].Labels, "web-form") {
		t.Errorf("labels = %v", got[0].Labels)
	}
}

func TestBadRowsAreDeadLetteredAndTheRestFlows(t *testing.T) {
	h := newHarness(t, jirasandbox.Options{})
	samples, _ := form.Samples()
	bad := []struct {
		ev    *formsv1.FormSubmission
		field string
	}{
		{ticketertest.Event(form.WithValue(samples[1].Columns(), "departmentname", form.Text("Astrology")), 0), "customfield_10073"},
		{ticketertest.Event(form.WithValue(samples[2].Columns(), "timeframe", form.Null()), 0), "customfield_10079"},
		{ticketertest.Event(form.WithValue(samples[3].Columns(), "newusername", form.Text(strings.Repeat("x", 300))), 0), "customfield_10070"},
	}
	good := ticketertest.SampleEvents(t)[10:30]
	h.Publish(good[:10]...)
	for _, b := range bad {
		h.Publish(b.ev)
	}
	h.Publish(good[10:]...)
	h.Start()
	h.WaitFor("20 tickets and 3 dead letters", 30*time.Second, func() bool {
		return len(h.SB.Issues()) >= 20 && len(h.DLQ()) >= 3
	})
	h.AssertOneTicketPerHash(good)
	dl := h.DLQ()
	if len(dl) != 3 {
		t.Fatalf("%d dead letters, want 3", len(dl))
	}
	for _, m := range dl {
		d := stream.ParseDeadLetter(nats.Header(m.Header))
		// Workers run concurrently: match dead letters to rows by hash.
		i := slices.IndexFunc(bad, func(b struct {
			ev    *formsv1.FormSubmission
			field string
		}) bool {
			return b.ev.GetHash() == d.Hash
		})
		if i < 0 {
			t.Errorf("dead letter for unknown hash %s", d.Hash)
			continue
		}
		if d.Reason != stream.ReasonUnmappable && d.Reason != stream.ReasonJiraRejected {
			t.Errorf("dead letter %d: reason %q", i, d.Reason)
		}
		all := d.Error + " " + strings.Join(d.FieldErrors, " ")
		if !strings.Contains(all, bad[i].field) {
			t.Errorf("dead letter %d does not name %s: %s", i, bad[i].field, all)
		}
		if d.Hash != bad[i].ev.GetHash() || d.OrigStream != stream.Forms || d.OrigSeq == 0 || d.Attempts < 1 ||
			d.FirstFailure.IsZero() || d.LastFailure.IsZero() || d.DeadLetteredBy != "ticketer" {
			t.Errorf("dead letter %d headers incomplete: %+v", i, d)
		}
		if ev, err := stream.Unmarshal(m.Data); err != nil || ev.GetHash() != bad[i].ev.GetHash() {
			t.Errorf("dead letter %d body is not the original event: %v", i, err)
		}
	}
}

// TestJiraRejectionIsDeadLetteredWithFieldNames sends a value the mapping
// cannot catch (Jira changed its options after meta was fetched) so that
// Jira's own 400 is what dead-letters it.
// TestJiraRejectionIsDeadLetteredWithFieldNames: a value Jira refuses is
// dead-lettered naming the field by id and name, whether Jira names it by
// id (the platform API's errors map) or, as JSM sites word it, by name in
// one sentence.
func TestJiraRejectionIsDeadLetteredWithFieldNames(t *testing.T) {
	for _, tc := range []struct {
		name, mapping string
		opts          jirasandbox.Options
	}{
		{"platform", "", jirasandbox.Options{}},
		{"jsm, by id", "../../deploy/mapping-jsm.yaml", jirasandbox.Options{}},
		{"jsm, by name", "../../deploy/mapping-jsm.yaml", jirasandbox.Options{JSMErrorsByName: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.opts)
			if tc.mapping != "" {
				h.Env["MAPPING_FILE"], _ = filepath.Abs(tc.mapping)
			}
			m, err := mapping.Load(h.Env["MAPPING_FILE"])
			if err != nil {
				t.Fatal(err)
			}
			jc, err := jira.New(jira.Options{URL: h.URL, Email: ticketertest.Email, APIToken: ticketertest.Token, APIVersion: m.APIVersion()})
			if err != nil {
				t.Fatal(err)
			}
			kv, err := stream.EnsureTickets(context.Background(), h.JS, stream.Config{})
			if err != nil {
				t.Fatal(err)
			}
			// A Jira whose meta claims "Astrology" is allowed: the sandbox refuses it.
			lying := &fakeMetaJira{Client: jc, extra: "Astrology"}
			tickets := stream.Tickets{KV: kv}
			p, err := ticketing.New(ticketing.Config{Jira: lying, Mapping: m, Records: tickets, LabelJobs: tickets, DeadLetters: h.JS,
				BatchSize: 50, Concurrency: 1, ReconcileDelay: time.Second, JiraTimeout: time.Second, RetryWindow: 5 * time.Second, MaxFailures: 5})
			if err != nil {
				t.Fatal(err)
			}
			samples, _ := form.Samples()
			ev := ticketertest.Event(form.WithValue(samples[1].Columns(), "departmentname", form.Text("Astrology")), 0)
			data, _ := stream.Marshal(ev)
			out := p.Process(context.Background(), []ticketing.Item{{Data: data, Stream: stream.Forms, Seq: 7, Delivery: 1, Subject: ticketertest.FormSubject}})
			if out[0].Status != ticketing.StatusDeadLettered || out[0].DeadLetter.Reason != stream.ReasonJiraRejected {
				t.Fatalf("outcome %+v", out[0])
			}
			fe := strings.Join(out[0].DeadLetter.FieldErrors, "|")
			if !strings.Contains(fe, "customfield_10073 (Department)") {
				t.Errorf("field errors %q do not name id and name", fe)
			}
			if r, _, _ := (stream.Tickets{KV: kv}).Get(context.Background(), ev.GetHash()); r != nil {
				t.Errorf("claim of a rejected event kept: %+v", r)
			}
		})
	}
}

type fakeMetaJira struct {
	*jira.Client
	extra string
}

func (f *fakeMetaJira) Meta(ctx context.Context, m ticket.Target) (*ticket.Meta, error) {
	meta, err := f.Client.Meta(ctx, m)
	if err != nil {
		return nil, err
	}
	fm := meta.Fields["customfield_10073"]
	fm.Allowed = append(slices.Clone(fm.Allowed), ticket.Option{ID: "99999", Value: f.extra})
	meta.Fields["customfield_10073"] = fm
	return meta, nil
}

func TestRateLimitedJiraHonoursRetryAfter(t *testing.T) {
	h := newHarness(t, jirasandbox.Options{RatePerSecond: 5, Burst: 1})
	h.Env["BATCH_SIZE"] = "5"
	h.Env["CONCURRENCY"] = "4"
	h.Env["MAX_ACK_PENDING"] = "100"
	evs := ticketertest.SampleEvents(t)[:60]
	h.KnownRequesters(evs)
	h.Publish(evs...)
	h.Start()
	want := ticketertest.DistinctHashes(evs)
	h.WaitFor("all tickets", 60*time.Second, func() bool { return len(h.SB.Issues()) >= want && h.Pending() == 0 })
	time.Sleep(200 * time.Millisecond)
	h.AssertOneTicketPerHash(evs)
	reqs := h.SB.Requests()
	throttled := 0
	// After a 429 at T with Retry-After R, nothing may arrive at that
	// endpoint in [T+slack, T+R): Jira limits bursts per endpoint, so other
	// endpoints may go on. slack covers requests already on the wire.
	const slack = 30 * time.Millisecond
	for i, r := range reqs {
		if r.Status != 429 {
			continue
		}
		throttled++
		if r.RetryAfter <= 0 {
			t.Fatalf("the 429 at %v carried no Retry-After", r.Time.Format("15:04:05.000"))
		}
		until := r.Time.Add(r.RetryAfter)
		for _, later := range reqs[i+1:] {
			if later.Endpoint == r.Endpoint && later.Time.After(r.Time.Add(slack)) && later.Time.Before(until) {
				t.Errorf("request %s %s at %v, before Retry-After of the 429 at %v elapsed",
					later.Method, later.Path, later.Time.Format("15:04:05.000"), r.Time.Format("15:04:05.000"))
				break
			}
		}
	}
	if throttled == 0 {
		t.Error("no request was answered 429: the test did not exercise Retry-After")
	}
	t.Logf("%d requests, %d answered 429", len(reqs), throttled)
}

// TestFlakyJiraCreatesEveryTicketOnce: Jira answers some requests 5xx
// (before doing anything, or after creating the ticket), in platform mode
// (bulk creates, reconciled by label) and in JSM mode (one request each,
// whose labels only follow in an edit: reconciled by the record hash in
// the description). Every request becomes exactly one ticket.
func TestFlakyJiraCreatesEveryTicketOnce(t *testing.T) {
	t.Parallel() // waits on Jira and NATS, not the CPU
	for _, tc := range []struct {
		name string
		opts jirasandbox.Options
		jsm  bool
		n    int
	}{
		{"5xx", jirasandbox.Options{Error5xxRate: 0.2, Seed: 1}, false, 100},
		{"created-but-500", jirasandbox.Options{CreatedBut500Rate: 0.2, Seed: 2, SearchDelay: 100 * time.Millisecond}, false, 100},
		{"jsm-5xx", jirasandbox.Options{Error5xxRate: 0.2, Seed: 3}, true, 20},
		{"jsm-created-but-500", jirasandbox.Options{CreatedBut500Rate: 0.3, Seed: 4, SearchDelay: 100 * time.Millisecond}, true, 20},
		// Jira Data Center (REST v2): no enhanced search, no bulkfetch.
		{"data-center-created-but-500", jirasandbox.Options{CreatedBut500Rate: 0.2, Seed: 6, DataCenter: true}, false, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, tc.opts)
			h.Env["BATCH_SIZE"] = "10"
			h.Env["JIRA_TIMEOUT"] = "1s" // unknown outcomes settle sooner
			if tc.jsm {
				h.Env["MAPPING_FILE"], _ = filepath.Abs("../../deploy/mapping-jsm.yaml")
			}
			if tc.opts.DataCenter {
				b, err := os.ReadFile("../../deploy/mapping.yaml")
				if err != nil {
					t.Fatal(err)
				}
				h.Env["MAPPING_FILE"] = filepath.Join(t.TempDir(), "mapping.yaml")
				if err := os.WriteFile(h.Env["MAPPING_FILE"], bytes.Replace(b, []byte("\napi_version: 3"), []byte("\napi_version: 2"), 1), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			evs := ticketertest.SampleEvents(t)[:tc.n]
			h.KnownRequesters(evs) // the faults are the creates', not the customers'

			h.Publish(evs...)
			h.Start()
			want := ticketertest.DistinctHashes(evs)
			h.WaitFor("all tickets", 60*time.Second, func() bool { return len(h.SB.Issues()) >= want && h.Pending() == 0 })
			time.Sleep(500 * time.Millisecond)
			if tc.jsm {
				h.AssertOneRequestPerHash(evs)
			} else {
				h.AssertOneTicketPerHash(evs)
			}
			if d := h.DLQ(); len(d) != 0 {
				t.Errorf("%d dead letters", len(d))
			}
			faults := 0
			for _, r := range h.SB.Requests() {
				if r.Status >= 500 {
					faults++
				}
			}
			if faults == 0 {
				t.Error("no request was answered 5xx: the test injected no fault")
			}
			if tc.opts.DataCenter {
				legacy := 0
				for _, r := range h.SB.Requests() {
					if strings.HasSuffix(r.Path, "/search") && r.Status == 200 {
						legacy++
					}
				}
				if legacy == 0 {
					t.Error("no search answered: the unknown outcomes were not reconciled by Data Center's search")
				}
			}
			t.Logf("%d requests answered 5xx", faults)
		})
	}
}

func TestAuthFailureStopsConsumingAndResumes(t *testing.T) {
	t.Parallel() // waits on Jira and NATS, not the CPU
	h := newHarness(t, jirasandbox.Options{})
	addr := testsupport.FreeAddr(t)
	h.Env["HTTP_ADDR"] = addr
	evs := ticketertest.SampleEvents(t)[:40]
	h.Publish(evs[:10]...)
	h.Start()
	h.WaitFor("10 tickets", 30*time.Second, func() bool { return len(h.SB.Issues()) >= 10 })
	if v := testsupport.MetricAt(addr, "ticketer_jira_refused"); v != 0 {
		t.Errorf("ticketer_jira_refused = %v while Jira works, want 0", v)
	}
	h.SB.SetAuthFailure(401)
	h.Publish(evs[10:]...)
	h.WaitFor("the auth failure to be noticed", 15*time.Second, func() bool {
		return strings.Contains(h.Logs.String(), "JIRA REFUSES THE CREDENTIALS")
	})
	time.Sleep(time.Second)
	if n := len(h.SB.Issues()); n != 10 {
		t.Errorf("%d tickets while the credentials are refused, want 10", n)
	}
	if d := h.DLQ(); len(d) != 0 {
		t.Errorf("%d dead letters during an auth failure", len(d))
	}
	if v := testsupport.MetricAt(addr, "ticketer_jira_refused"); v != 1 {
		t.Errorf("ticketer_jira_refused = %v while consuming is stopped, want 1 (the alert's signal)", v)
	}
	h.SB.SetAuthFailure(0)
	h.WaitFor("40 tickets after the fix", 30*time.Second, func() bool { return len(h.SB.Issues()) >= 40 })
	if v := testsupport.MetricAt(addr, "ticketer_jira_refused"); v != 0 {
		t.Errorf("ticketer_jira_refused = %v after the fix, want 0", v)
	}
	time.Sleep(200 * time.Millisecond)
	h.AssertOneTicketPerHash(evs)
}

func TestJSMModeEndToEnd(t *testing.T) {
	h := newHarness(t, jirasandbox.Options{})
	h.Env["MAPPING_FILE"], _ = filepath.Abs("../../deploy/mapping-jsm.yaml")
	evs := ticketertest.SampleEvents(t)[:30]
	h.Publish(evs...)
	h.Start()
	h.WaitFor("30 requests", 30*time.Second, func() bool { return len(h.SB.Issues()) >= 30 })
	// The labels follow in deferred edits (package labeledit).
	h.WaitFor("30 requests labelled", 30*time.Second, func() bool {
		n := 0
		for _, ev := range evs {
			n += min(len(h.SB.IssueByLabel("cowjacket-"+strings.ToLower(ev.GetHash()))), 1)
		}
		return n >= ticketertest.DistinctHashes(evs)
	})
	time.Sleep(300 * time.Millisecond)
	h.AssertOneTicketPerHash(evs)
	sara := h.SB.IssueByLabel("cowjacket-" + strings.ToLower(evs[0].GetHash()))
	if len(sara) != 1 {
		t.Fatalf("%d Sara Curtis requests", len(sara))
	}
	// Raised on behalf of Sara's customer account, created on her first
	// request: Jira takes accountIds, not e-mails.
	var saraID string
	for _, a := range h.SB.Customers() {
		if a.Email == "sara.curtis@example.com" {
			saraID = a.AccountID
		}
	}
	if sara[0].API != "jsm" || saraID == "" || sara[0].RaisedOnBehalfOf != saraID {
		t.Errorf("api %q on behalf of %q; Sara's account %q", sara[0].API, sara[0].RaisedOnBehalfOf, saraID)
	}
	if s, _ := sara[0].Fields["customfield_10076"].(string); s != "5540221908" {
		t.Errorf("cost center %#v", sara[0].Fields["customfield_10076"])
	}
}

// TestFormsMadeAgainIsConsumed: FORMS deleted under a running ticketer
// (its consumer with it) and made again, as capture does: ticketer makes
// its consumer again and tickets the new events, without a restart.
func TestFormsMadeAgainIsConsumed(t *testing.T) {
	t.Parallel() // waits on NATS, not the CPU
	h := newHarness(t, jirasandbox.Options{})
	evs := ticketertest.SampleEvents(t)[:2]
	h.Publish(evs[0])
	h.Start()
	h.WaitFor("the first ticket", 20*time.Second, func() bool { return len(h.SB.Issues()) == 1 })
	ctx := context.Background()
	if err := h.JS.DeleteStream(ctx, stream.Forms); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.EnsureForms(ctx, h.JS, stream.Config{}); err != nil {
		t.Fatal(err)
	}
	h.Publish(evs[1])
	h.WaitFor("the ticket of the event in the new FORMS", 30*time.Second, func() bool { return len(h.SB.Issues()) == 2 })
	if l := h.Logs.String(); !strings.Contains(l, "made again") {
		t.Errorf("no log line says the consumer was made again:\n%s", l)
	}
}
