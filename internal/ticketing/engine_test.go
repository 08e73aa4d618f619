package ticketing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/jira"
	"github.com/cowjacket/formjira/internal/labeledit"
	"github.com/cowjacket/formjira/internal/mapping"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/ticket"
	"github.com/cowjacket/formjira/internal/ticketing/ticketingtest"
	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var (
	_ Jira           = (*ticketingtest.Jira)(nil)
	_ Records        = (*ticketingtest.Records)(nil)
	_ labeledit.Jobs = (*ticketingtest.Records)(nil)
	_ Publisher      = (*ticketingtest.Publisher)(nil)
)

// fixture is an engine over the in-memory fakes with the shipped platform
// mapping and the sandbox's createmeta for project CP.
type fixture struct {
	t       *testing.T
	jira    *ticketingtest.Jira
	records *ticketingtest.Records
	dlq     *ticketingtest.Publisher
	engine  *Engine
}

func newFixture(t *testing.T, tune func(*Config)) *fixture {
	t.Helper()
	m, meta := shipped(t, "mapping.yaml", "createmeta-CP-10003.json", jira.ParseCreatemeta)
	f := &fixture{t: t, records: ticketingtest.NewRecords(), dlq: &ticketingtest.Publisher{}}
	f.jira = &ticketingtest.Jira{MetaFunc: func(context.Context, ticket.Target) (*ticket.Meta, error) { return meta, nil }}
	cfg := Config{
		Jira: f.jira, Mapping: m, Records: f.records, LabelJobs: f.records, DeadLetters: f.dlq,
		BatchSize: 50, Concurrency: 2, ReconcileDelay: 200 * time.Millisecond, JiraTimeout: 100 * time.Millisecond,
		RetryWindow: 400 * time.Millisecond, MaxFailures: 5, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
	}
	if tune != nil {
		tune(&cfg)
	}
	var err error
	if f.engine, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	return f
}

// events are the first n sample submissions.
func events(t *testing.T, n int) []*formsv1.FormSubmission {
	t.Helper()
	samples, err := form.Samples()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*formsv1.FormSubmission, n)
	for i := range out {
		out[i] = form.NewEvent(samples[i].Columns(), []string{"id"}, nil, &formsv1.Source{}, time.Now())
	}
	return out
}

func items(t *testing.T, evs ...*formsv1.FormSubmission) []Item {
	t.Helper()
	out := make([]Item, len(evs))
	for i, ev := range evs {
		data, err := stream.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = Item{Data: data, Stream: stream.Forms, Seq: uint64(i + 1), Subject: "forms.submitted.public.form_submissions", Delivery: 1}
	}
	return out
}

func (f *fixture) process(its ...Item) []Outcome {
	f.t.Helper()
	return f.engine.Process(context.Background(), its)
}

func TestNewEventsAreCreatedAndRecorded(t *testing.T) {
	f := newFixture(t, nil)
	evs := events(t, 3)
	outs := f.process(items(t, evs[0], evs[1], evs[2], evs[0])...)
	for i, want := range []Status{StatusCreated, StatusCreated, StatusCreated, StatusSkipped} {
		if outs[i].Status != want {
			t.Errorf("item %d: %v, want %v", i, outs[i].Status, want)
		}
	}
	if outs[3].Key != outs[0].Key {
		t.Errorf("in-batch duplicate: key %q, want the first's %q", outs[3].Key, outs[0].Key)
	}
	if n := f.jira.Count("BulkCreate"); n != 1 || len(f.jira.Created) != 3 {
		t.Errorf("%d bulk creates carrying %d requests, want 1 carrying 3", n, len(f.jira.Created))
	}
	for i, ev := range evs {
		r := f.records.Record(ev.GetHash())
		if r == nil || r.State != stream.StateCreated || r.Key != outs[i].Key {
			t.Errorf("record of event %d: %+v, want created %s", i, r, outs[i].Key)
		}
		// The index records outcomes by this hash, the body's.
		if outs[i].Hash != ev.GetHash() {
			t.Errorf("outcome %d names hash %q, want the event's %q", i, outs[i].Hash, ev.GetHash())
		}
	}
	// A second delivery finds the records: nothing is sent again.
	again := f.process(items(t, evs[0])...)
	if again[0].Status != StatusSkipped || again[0].Key != outs[0].Key || f.jira.Count("BulkCreate") != 1 {
		t.Errorf("redelivery: %+v after %d bulk creates", again[0], f.jira.Count("BulkCreate"))
	}
}

func TestUnknownOutcomeIsReconciledBeforeCreating(t *testing.T) {
	ev := events(t, 1)[0]
	label := ticket.HashLabel(ev.GetHash())
	tests := []struct {
		name        string
		recheckIn   time.Duration // the claim's RecheckAfter, from now
		found       []string      // what the search finds
		want        Status
		wantCreates int
	}{
		{"found: recorded, nothing created", -time.Second, []string{"CP-77"}, StatusSkipped, 0},
		{"young claim, empty search: wait, never create", time.Hour, nil, StatusRetry, 0},
		{"old claim, empty search: take over and create", -time.Second, nil, StatusCreated, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			now := time.Now()
			f.records.Set(ev.GetHash(), stream.Record{State: stream.StateClaimed, ClaimedAt: now.Add(-time.Minute), RecheckAfter: now.Add(tt.recheckIn), Attempt: 1})
			f.jira.FindByLabelsFunc = func(_ context.Context, labels []string) (map[string][]string, error) {
				if len(labels) != 1 || labels[0] != label {
					t.Errorf("searched %v, want [%s]", labels, label)
				}
				if tt.found == nil {
					return map[string][]string{}, nil
				}
				return map[string][]string{label: tt.found}, nil
			}
			out := f.process(items(t, ev)...)[0]
			if out.Status != tt.want {
				t.Fatalf("outcome %+v, want %v", out, tt.want)
			}
			if got := len(f.jira.Created); got != tt.wantCreates {
				t.Errorf("%d creates, want %d", got, tt.wantCreates)
			}
			r := f.records.Record(ev.GetHash())
			switch tt.want {
			case StatusSkipped:
				if r.State != stream.StateCreated || r.Key != "CP-77" || out.Key != "CP-77" {
					t.Errorf("record %+v, outcome key %q; want CP-77", r, out.Key)
				}
			case StatusRetry:
				if r.State != stream.StateClaimed || out.RetryIn <= 0 {
					t.Errorf("record %+v, retry in %v; want the claim kept and a delay", r, out.RetryIn)
				}
			case StatusCreated:
				if r.State != stream.StateCreated || r.Key != out.Key || r.Attempt < 2 {
					t.Errorf("record %+v; want created by a later attempt with %s", r, out.Key)
				}
			}
		})
	}
}

// A create that answered 500 (or 408, a proxy's) may have created the
// issue: the engine never creates again before a search that Jira's index
// had time to answer.
func TestServerErrorOnCreateIsNeverRetriedBlind(t *testing.T) {
	for _, status := range []int{http.StatusInternalServerError, http.StatusRequestTimeout} {
		t.Run(http.StatusText(status), func(t *testing.T) { neverRetriedBlind(t, status) })
	}
}

func neverRetriedBlind(t *testing.T, status int) {
	f := newFixture(t, func(c *Config) { c.ReconcileDelay = time.Hour })
	ev := events(t, 1)[0]
	f.jira.BulkCreateFunc = func(_ context.Context, reqs []*ticket.Request) ([]jira.Result, error) {
		err := &jira.APIError{Op: "bulk create", Status: status}
		return []jira.Result{{Err: err}}, err
	}
	out := f.process(items(t, ev)...)[0]
	if out.Status != StatusRetry || len(f.jira.Created) != 1 {
		t.Fatalf("outcome %+v after %d creates; want one create, then retry later", out, len(f.jira.Created))
	}
	r := f.records.Record(ev.GetHash())
	if r.State != stream.StateClaimed || time.Until(r.RecheckAfter) < 50*time.Minute {
		t.Errorf("record %+v: want the claim kept until the reconcile delay passed", r)
	}
	// The next delivery, sooner: neither search nor the read by key finds
	// the issue, and the claim is young: still no second create.
	again := f.process(items(t, ev)...)[0]
	if again.Status != StatusRetry || len(f.jira.Created) != 1 || f.jira.Count("FindByLabels") == 0 {
		t.Errorf("second delivery %+v after %d creates and %d searches; want retry, one create", again, len(f.jira.Created), f.jira.Count("FindByLabels"))
	}
}

func TestRejectedAndUnmappableAreDeadLetteredNamingTheField(t *testing.T) {
	f := newFixture(t, nil)
	evs := events(t, 2)
	samples, _ := form.Samples()
	bad := form.NewEvent(form.WithValue(samples[2].Columns(), "departmentname", form.Text("Astrology")), []string{"id"}, nil, &formsv1.Source{}, time.Now())
	f.jira.BulkCreateFunc = func(_ context.Context, reqs []*ticket.Request) ([]jira.Result, error) {
		out := make([]jira.Result, len(reqs))
		for i, r := range reqs {
			if r.Hash == evs[1].GetHash() {
				out[i].Err = &jira.APIError{Op: "bulk create", Status: 400, FieldErrors: map[string]string{"customfield_10080": "Date needed by is in the past"}}
				continue
			}
			out[i].Key = f.jira.NextKey()
		}
		return out, nil
	}
	outs := f.process(items(t, evs[0], evs[1], bad)...)
	if outs[0].Status != StatusCreated || outs[1].Status != StatusDeadLettered || outs[2].Status != StatusDeadLettered {
		t.Fatalf("outcomes %v %v %v; want created, dead-lettered, dead-lettered", outs[0].Status, outs[1].Status, outs[2].Status)
	}
	dls := f.dlq.DeadLetters()
	if len(dls) != 2 {
		t.Fatalf("%d dead letters, want 2", len(dls))
	}
	byHash := map[string]stream.DeadLetter{dls[0].Hash: dls[0], dls[1].Hash: dls[1]}
	rej, unm := byHash[evs[1].GetHash()], byHash[bad.GetHash()]
	if rej.Reason != stream.ReasonJiraRejected || !strings.Contains(strings.Join(rej.FieldErrors, " "), "customfield_10080 (Date needed by)") {
		t.Errorf("rejected: %+v", rej)
	}
	if unm.Reason != stream.ReasonUnmappable || !strings.Contains(unm.Error+strings.Join(unm.FieldErrors, " "), "customfield_10073") {
		t.Errorf("unmappable: %+v", unm)
	}
	if r := f.records.Record(evs[1].GetHash()); r != nil {
		t.Errorf("the rejected event's claim was kept: %+v (a replay after the fix must start clean)", r)
	}
	if len(f.jira.Created) != 2 {
		t.Errorf("%d requests sent, want 2 (the unmappable row never reaches Jira)", len(f.jira.Created))
	}
}

// Jira refusing us (401, 403 on create, served as anonymous) is no failure
// of the event: StatusAuth, nothing dead-lettered, nothing counted.
func TestRefusedCredentialsAndPermissions(t *testing.T) {
	for _, refusal := range []*jira.APIError{
		{Op: jira.OpBulkCreate, Status: http.StatusUnauthorized},
		{Op: jira.OpBulkCreate, Status: http.StatusForbidden},
		{Op: jira.OpBulkCreate, Status: http.StatusOK, Anonymous: true},
	} {
		f := newFixture(t, func(c *Config) { c.MaxFailures = 1 })
		ev := events(t, 1)[0]
		f.jira.BulkCreateFunc = func(context.Context, []*ticket.Request) ([]jira.Result, error) {
			return []jira.Result{{Err: refusal}}, refusal
		}
		for range 2 {
			out := f.process(items(t, ev)...)[0]
			if out.Status != StatusAuth || len(f.dlq.Msgs) != 0 {
				t.Errorf("%v: %+v, %d dead letters; want StatusAuth and none", refusal, out, len(f.dlq.Msgs))
			}
		}
		if r := f.records.Record(ev.GetHash()); r != nil && r.Failures != 0 {
			t.Errorf("%v counted as the event's failure: %+v", refusal, r)
		}
	}
	if err := (&jira.APIError{Op: jira.OpBulkCreate, Status: http.StatusForbidden}); !strings.Contains(err.Error(), "Create issues") {
		t.Errorf("403 does not name the permission: %v", err)
	}
}

// A transient failure while Jira otherwise works is the event's: counted
// once per delivery, dead-lettered as exhausted at MaxFailures. Throttling
// is not: Jira paces the site, so a 429 outlasting every window costs only
// time.
func TestTransientFailures(t *testing.T) {
	// Retryable, and provably nothing created (a refused connection; a 408
	// may have created it, see TestServerErrorOnCreateIsNeverRetriedBlind).
	unavailable := fmt.Errorf("bulk create: connection refused: %w", jira.ErrRetryable)
	t.Run("retried within the window, then created", func(t *testing.T) {
		f := newFixture(t, nil)
		calls := 0
		f.jira.BulkCreateFunc = func(_ context.Context, reqs []*ticket.Request) ([]jira.Result, error) {
			if calls++; calls == 1 {
				return []jira.Result{{Err: unavailable}}, unavailable
			}
			return []jira.Result{{Key: "CP-5"}}, nil
		}
		out := f.process(items(t, events(t, 1)...)...)[0]
		if out.Status != StatusCreated || out.Key != "CP-5" || calls != 2 {
			t.Errorf("%+v after %d calls", out, calls)
		}
	})
	t.Run("still failing: counted, exhausted at MaxFailures", func(t *testing.T) {
		f := newFixture(t, func(c *Config) { c.MaxFailures = 3 })
		f.jira.BulkCreateFunc = func(context.Context, []*ticket.Request) ([]jira.Result, error) {
			return []jira.Result{{Err: unavailable}}, unavailable
		}
		ev := events(t, 1)[0]
		for delivery := 1; delivery <= 3; delivery++ {
			it := items(t, ev)[0]
			it.Delivery = delivery
			out := f.process(it)[0]
			if delivery < 3 && (out.Status != StatusRetry || len(f.dlq.Msgs) != 0 || f.records.Record(ev.GetHash()).Failures != delivery) {
				t.Fatalf("delivery %d: %+v, record %+v", delivery, out, f.records.Record(ev.GetHash()))
			}
			if delivery == 3 && (out.Status != StatusDeadLettered || f.dlq.DeadLetters()[0].Reason != stream.ReasonExhausted || f.dlq.DeadLetters()[0].Attempts != 3) {
				t.Errorf("delivery 3: %+v %+v", out, f.dlq.DeadLetters())
			}
		}
	})
	t.Run("throttled past every window: not counted, never exhausted", func(t *testing.T) {
		f := newFixture(t, func(c *Config) { c.MaxFailures = 3 })
		throttled := &jira.APIError{Op: "bulk create", Status: http.StatusTooManyRequests}
		f.jira.BulkCreateFunc = func(context.Context, []*ticket.Request) ([]jira.Result, error) {
			return []jira.Result{{Err: throttled}}, throttled
		}
		ev := events(t, 1)[0]
		for delivery := 1; delivery <= 5; delivery++ {
			it := items(t, ev)[0]
			it.Delivery = delivery
			out := f.process(it)[0]
			if out.Status != StatusRetry {
				t.Fatalf("delivery %d: %+v, dead letters %+v", delivery, out, f.dlq.DeadLetters())
			}
			if r := f.records.Record(ev.GetHash()); r != nil && r.Failures != 0 {
				t.Fatalf("delivery %d: throttling counted as the event's failure: %+v", delivery, r)
			}
		}
		if len(f.dlq.Msgs) != 0 {
			t.Errorf("dead letters: %+v", f.dlq.DeadLetters())
		}
	})
}

// Jira down (the circuit's gate refuses calls): the event is held, not
// failed; nothing is counted however often it comes.
func TestOutageHoldsWithoutCounting(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxFailures = 1 })
	down := fmt.Errorf("jira bulk create: %w", jira.ErrCircuitOpen)
	f.jira.MetaFunc = func(context.Context, ticket.Target) (*ticket.Meta, error) { return nil, down }
	ev := events(t, 1)[0]
	for range 3 {
		out := f.process(items(t, ev)...)[0]
		if out.Status != StatusHeld || len(f.dlq.Msgs) != 0 {
			t.Fatalf("%+v, %d dead letters; want held, none", out, len(f.dlq.Msgs))
		}
	}
	if r := f.records.Record(ev.GetHash()); r != nil && r.Failures > 0 {
		t.Errorf("outage counted: %+v", r)
	}
}

type requesterFunc func(context.Context, ticket.Person) (string, error)

func (f requesterFunc) AccountID(ctx context.Context, p ticket.Person) (string, error) {
	return f(ctx, p)
}

func (f requesterFunc) OnDesk(context.Context, ticket.Person) (bool, error) { return true, nil }

// A requester Jira refuses outright (a 400 on the customer) is
// dead-lettered at once, naming the requester, not retried until
// MAX_DELIVER.
func TestRequesterRefusedByJiraIsDeadLettered(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.Requesters = requesterFunc(func(context.Context, ticket.Person) (string, error) {
			return "", &jira.APIError{Op: jira.OpCustomerCreate, Status: 400, Messages: []string{"The email address is invalid."}}
		})
	})
	out := f.process(items(t, events(t, 1)...)...)[0]
	if out.Status != StatusDeadLettered || len(f.jira.Created) != 0 {
		t.Fatalf("%+v after %d creates; want dead-lettered, no create", out, len(f.jira.Created))
	}
	dl := f.dlq.DeadLetters()[0]
	if dl.Reason != stream.ReasonJiraRejected || len(dl.FieldErrors) != 1 || !strings.Contains(dl.FieldErrors[0], "requester (") {
		t.Errorf("dead letter %+v", dl)
	}
}

// An attempt that provably created nothing (429s past the retry window)
// leaves no search window behind: once Jira takes requests again, the next
// delivery creates the ticket at once, not after RECONCILE_DELAY.
func TestNothingCreatedLeavesNoSearchWindow(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.ReconcileDelay = time.Hour; c.RetryWindow = 50 * time.Millisecond })
	ev := events(t, 1)[0]
	throttled := &jira.APIError{Op: jira.OpBulkCreate, Status: 429, RetryAfter: 10 * time.Millisecond}
	f.jira.BulkCreateFunc = func(context.Context, []*ticket.Request) ([]jira.Result, error) {
		return []jira.Result{{Err: throttled}}, throttled
	}
	if out := f.process(items(t, ev)...)[0]; out.Status != StatusRetry {
		t.Fatalf("throttled: %+v, want retry", out)
	}
	f.jira.BulkCreateFunc = nil // Jira takes requests again
	before := len(f.jira.Created)
	out := f.process(items(t, ev)...)[0]
	if out.Status != StatusCreated || len(f.jira.Created) != before+1 {
		t.Errorf("next delivery: %+v after %d creates; want created at once, by one create", out, len(f.jira.Created)-before)
	}
}

// A bulk refused as a whole (400 naming no element) is sent one by one:
// the good requests get their tickets, the bad one is dead-lettered alone.
func TestBatchRejectedAsAWholeGoesOneByOne(t *testing.T) {
	f := newFixture(t, nil)
	evs := events(t, 3)
	f.jira.BulkCreateFunc = func(context.Context, []*ticket.Request) ([]jira.Result, error) {
		err := fmt.Errorf("%w: %w", jira.ErrBatchRejected, &jira.APIError{Op: jira.OpBulkCreate, Status: 400})
		return []jira.Result{{Err: err}, {Err: err}, {Err: err}}, err
	}
	f.jira.CreateFunc = func(_ context.Context, req *ticket.Request) (string, error) {
		if req.Hash == evs[1].GetHash() {
			return "", &jira.APIError{Op: jira.OpCreate, Status: 400, Messages: []string{"Field 'priority' is required"}}
		}
		return f.jira.NextKey(), nil
	}
	outs := f.process(items(t, evs...)...)
	if outs[0].Status != StatusCreated || outs[1].Status != StatusDeadLettered || outs[2].Status != StatusCreated {
		t.Errorf("outcomes %v %v %v; want created, dead-lettered, created", outs[0].Status, outs[1].Status, outs[2].Status)
	}
	if f.jira.Count("Create") != 3 {
		t.Errorf("%d single creates, want 3", f.jira.Count("Create"))
	}
}

// A create that answered 500 after creating is found at once by reading the
// keys above the claim's floor, though search lags: recorded, never created
// twice, and no wait for the reconcile window.
func TestCreatedBehind500IsFoundByKeyWithoutSearch(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.ReconcileDelay = time.Hour; c.RetryWindow = 2 * time.Second })
	ev := events(t, 1)[0]
	label := ticket.HashLabel(ev.GetHash())
	f.jira.LatestKeyFunc = func(context.Context, string) (string, error) { return "CP-41", nil }
	f.jira.BulkCreateFunc = func(context.Context, []*ticket.Request) ([]jira.Result, error) {
		err := &jira.APIError{Op: jira.OpBulkCreate, Status: 500}
		return []jira.Result{{Err: err}}, err // created CP-42 nevertheless
	}
	var read []string
	f.jira.IssuesByKeyFunc = func(_ context.Context, keys []string) ([]jira.Issue, error) {
		read = append(read, keys[0])
		if keys[0] == "CP-42" {
			return []jira.Issue{{ID: "10042", Key: "CP-42", Labels: []string{"web-form", label}}}, nil
		}
		return nil, nil
	}
	start := time.Now()
	out := f.process(items(t, ev)...)[0]
	if out.Status != StatusCreated || out.Key != "CP-42" || len(f.jira.Created) != 1 {
		t.Fatalf("%+v after %d creates; want CP-42, one create", out, len(f.jira.Created))
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("took %v: the read by key should settle it at once", d)
	}
	if len(read) == 0 || read[0] != "CP-42" {
		t.Errorf("read windows from %v, want from CP-42 (one above the floor)", read)
	}
	if r := f.records.Record(ev.GetHash()); r.State != stream.StateCreated || r.Key != "CP-42" {
		t.Errorf("record %+v", r)
	}
}

// TestDeadLetterRedeliveredStaysOne: an event dead-lettered whose message
// was never settled (a crash before the Term) comes back; its dead
// letter's message id collapses in FORMS_DLQ, so it stays one entry, the
// outcome naming it. The series exist from the start, at 0, so that
// Prometheus' increase() sees the first dead letter.
func TestDeadLetterRedeliveredStaysOne(t *testing.T) {
	m := NewMetrics(nil)
	f := newFixture(t, func(c *Config) { c.Metrics = m })
	if n := testutil.CollectAndCount(m.DeadLettered); n < 5 {
		t.Errorf("%d dead-letter series before any dead letter, want one per reason", n)
	}
	samples, _ := form.Samples()
	bad := form.NewEvent(form.WithValue(samples[2].Columns(), "departmentname", form.Text("Astrology")), []string{"id"}, nil, &formsv1.Source{}, time.Now())
	it := items(t, bad)[0]
	first := f.process(it)[0]
	it.Delivery = 2
	again := f.process(it)[0]
	if first.Status != StatusDeadLettered || again.Status != StatusDeadLettered || again.DLQSeq != first.DLQSeq {
		t.Errorf("outcomes %+v then %+v; want dead-lettered twice, as the same dead letter", first, again)
	}
	if n := len(f.dlq.Msgs); n != 1 {
		t.Errorf("%d dead letters stored, want 1", n)
	}
	if got := testutil.ToFloat64(m.DeadLettered.WithLabelValues(stream.ReasonUnmappable)); got != 2 {
		t.Errorf("ticketer_dead_lettered_total{reason=unmappable} = %v, want 2 (counted again on the redelivery)", got)
	}
}

func TestDeadLetterPublishIsRetriedWithinTheDelivery(t *testing.T) {
	f := newFixture(t, nil)
	f.dlq.Fail = func(n int) error {
		if n <= 2 {
			return errors.New("nats: timeout")
		}
		return nil
	}
	samples, _ := form.Samples()
	bad := form.NewEvent(form.WithValue(samples[1].Columns(), "departmentname", form.Text("Astrology")), []string{"id"}, nil, &formsv1.Source{}, time.Now())
	out := f.process(items(t, bad)...)[0]
	if out.Status != StatusDeadLettered || out.DLQSeq != 1 || len(f.dlq.Msgs) != 1 {
		t.Errorf("%+v with %d dead letters stored, want dead-lettered once after two failed publishes", out, len(f.dlq.Msgs))
	}
}

func TestReplayReportsInsteadOfDeadLettering(t *testing.T) {
	f := newFixture(t, nil)
	samples, _ := form.Samples()
	bad := form.NewEvent(form.WithValue(samples[1].Columns(), "departmentname", form.Text("Astrology")), []string{"id"}, nil, &formsv1.Source{}, time.Now())
	it := items(t, bad)[0]
	it.NoDeadLetter = true
	out := f.process(it)[0]
	if out.Status != StatusRejected || out.DeadLetter == nil || out.DeadLetter.Reason != stream.ReasonUnmappable || len(f.dlq.Msgs) != 0 {
		t.Errorf("%+v, %d published; want rejected with the reason, nothing published", out, len(f.dlq.Msgs))
	}
}

func TestForceCreatesAgainAndRepointsTheRecord(t *testing.T) {
	f := newFixture(t, nil)
	ev := events(t, 1)[0]
	f.records.Set(ev.GetHash(), stream.Record{State: stream.StateCreated, Key: "CP-100", Attempt: 1})
	it := items(t, ev)[0]
	it.Force = true
	out := f.process(it)[0]
	if out.Status != StatusCreated || out.Key == "CP-100" {
		t.Fatalf("%+v, want a new ticket", out)
	}
	if r := f.records.Record(ev.GetHash()); r.Key != out.Key {
		t.Errorf("record points at %s, want %s", r.Key, out.Key)
	}
}

// The record store failing: a claim that cannot be read or written sends
// nothing to Jira (never a create without an owned claim), and the event
// comes back.
func TestStoreFailuresCreateNothing(t *testing.T) {
	for _, op := range []string{"get", "put"} {
		t.Run(op, func(t *testing.T) {
			f := newFixture(t, nil)
			f.records.Fail = func(o, _ string) error {
				if o == op {
					return errors.New("nats: timeout")
				}
				return nil
			}
			out := f.process(items(t, events(t, 1)...)...)[0]
			if out.Status != StatusRetry || f.jira.Count("BulkCreate")+f.jira.Count("Create") != 0 {
				t.Errorf("%+v after %d creates; want retry, no create", out, f.jira.Count("BulkCreate")+f.jira.Count("Create"))
			}
		})
	}
}

// The ticket is created but its record cannot be written (the store fails
// for good): the event is done, and the record stays a claim. The same
// request again (a replay, capture re-sending it) finds the ticket by its
// hash label instead of creating a second one, and records it.
func TestRecordLostAfterCreateIsFoundNotRecreated(t *testing.T) {
	f := newFixture(t, nil)
	ev := events(t, 1)[0]
	label := ticket.HashLabel(ev.GetHash())
	var key string
	f.jira.BulkCreateFunc = func(_ context.Context, reqs []*ticket.Request) ([]jira.Result, error) {
		key = f.jira.NextKey()
		return []jira.Result{{Key: key}}, nil
	}
	f.jira.FindByLabelsFunc = func(context.Context, []string) (map[string][]string, error) {
		if key == "" {
			return map[string][]string{}, nil
		}
		return map[string][]string{label: {key}}, nil
	}
	f.jira.IssuesByKeyFunc = func(_ context.Context, keys []string) ([]jira.Issue, error) {
		if key != "" && slices.Contains(keys, key) {
			return []jira.Issue{{Key: key, Labels: []string{label}}}, nil
		}
		return nil, nil
	}
	f.records.Fail = func(op, _ string) error {
		if op == "put" && key != "" {
			return errors.New("nats: timeout")
		}
		return nil
	}
	if out := f.process(items(t, ev)...)[0]; out.Status != StatusCreated || out.Key != key {
		t.Fatalf("first delivery: %+v, want created %s", out, key)
	}
	if r := f.records.Record(ev.GetHash()); r == nil || r.State != stream.StateClaimed {
		t.Fatalf("record %+v, want the claim left", r)
	}
	f.records.Fail = nil
	out := f.process(items(t, ev)...)[0]
	if out.Key != key || f.jira.Count("BulkCreate")+f.jira.Count("Create") != 1 {
		t.Errorf("the request again: %+v after %d creates; want %s found, one create", out, f.jira.Count("BulkCreate")+f.jira.Count("Create"), key)
	}
	if r := f.records.Record(ev.GetHash()); r == nil || r.Key != key || r.State != stream.StateCreated {
		t.Errorf("record %+v, want created %s", r, key)
	}
}

// An event that is not one (undecodable, or without its hash) is
// dead-lettered at once with the reason, and Jira never hears of it.
func TestNotAnEventIsDeadLettered(t *testing.T) {
	f := newFixture(t, nil)
	out := f.process(Item{Data: []byte("not protobuf \xff"), Seq: 9, Delivery: 1})[0]
	if out.Status != StatusDeadLettered || len(f.dlq.DeadLetters()) != 1 || f.dlq.DeadLetters()[0].Reason != stream.ReasonUndecodable {
		t.Errorf("%+v, dead letters %+v; want one undecodable", out, f.dlq.DeadLetters())
	}
	if n := f.jira.Count("BulkCreate") + f.jira.Count("Create"); n != 0 {
		t.Errorf("%d creates for a non-event", n)
	}
}

// takeOverPacer is a pacer during whose wait another worker takes the
// claim over (writes the record): the fence before the create.
type takeOverPacer struct {
	records  *ticketingtest.Records
	hash     string
	once     bool
	answered int
}

func (p *takeOverPacer) Wait(context.Context, string) error {
	if !p.once {
		p.once = true
		p.records.Set(p.hash, stream.Record{State: stream.StateClaimed, ClaimedAt: time.Now(), RecheckAfter: time.Now().Add(time.Hour), Attempt: 9})
	}
	return nil
}
func (p *takeOverPacer) WaitLow(context.Context, string) error { return nil }
func (p *takeOverPacer) Answered(string)                       { p.answered++ }

// A claim taken over while this worker waited for its turn at Jira is
// fenced: the record's revision moved, so nothing is sent (never two
// creates for one request).
func TestClaimTakenOverWhileWaitingSendsNothing(t *testing.T) {
	ev := events(t, 1)[0]
	pacer := &takeOverPacer{hash: ev.GetHash()}
	f := newFixture(t, func(c *Config) {
		pacer.records = c.Records.(*ticketingtest.Records)
		c.Pacer = pacer
		c.RetryWindow = 50 * time.Millisecond
	})
	out := f.process(items(t, ev)...)[0]
	if n := f.jira.Count("BulkCreate") + f.jira.Count("Create"); n != 0 || out.Status == StatusCreated {
		t.Errorf("%+v after %d creates; want nothing sent once the claim was taken over", out, n)
	}
	if r := f.records.Record(ev.GetHash()); r == nil || r.Attempt != 9 {
		t.Errorf("record %+v, want the other worker's claim untouched", r)
	}
	if pacer.answered != 1 {
		t.Errorf("the unused turn given back %d times, want once (a new lane waits for its first answer)", pacer.answered)
	}
}

// A dead letter that cannot be stored before shutdown is not claimed to
// be: the event comes back (nak), never terminated without its dead letter.
func TestDeadLetterAbandonedAtShutdownKeepsTheEvent(t *testing.T) {
	f := newFixture(t, nil)
	f.dlq.Fail = func(int) error { return errors.New("nats: no responders available for request") }
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	out := f.engine.Process(ctx, []Item{{Data: []byte("not protobuf \xff"), Seq: 9, Delivery: 1}})[0]
	if out.Status != StatusRetry || out.DeadLetter != nil || len(f.dlq.Msgs) != 0 {
		t.Errorf("%+v, %d dead letters stored; want retry (nak), none", out, len(f.dlq.Msgs))
	}
}

// lateAcks is a FORMS_TICKETS whose answer to one write comes late: the
// write is done, its acknowledgement is slow (a JetStream leader change).
type lateAcks struct {
	*ticketingtest.Records
	late func(hash string, n int) // n: the how-manieth write of hash
	mu   sync.Mutex
	puts map[string]int
}

func (r *lateAcks) Put(ctx context.Context, hash string, rec *stream.Record, rev uint64) (uint64, error) {
	n, err := r.Records.Put(ctx, hash, rec, rev)
	r.mu.Lock()
	r.puts[hash]++
	k := r.puts[hash]
	r.mu.Unlock()
	r.late(hash, k)
	return n, err
}

// A create is never sent under a claim another worker may already have
// taken over. Here the acknowledgement of one claim's stamp (its second
// write, after the claim) comes later than that claim's search window
// (JIRA_TIMEOUT + RECONCILE_DELAY), and meanwhile a second worker, seeing
// a claim old enough and no ticket, takes the request over and creates
// it. The first worker must then leave it out: one ticket each, in a bulk
// (the late stamp is the bulk's second) as one by one (JSM).
func TestStaleStampSendsNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		jsm  bool
		late int // which event's stamp is acknowledged late
	}{
		{"bulk", false, 1},
		{"one by one", true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs := events(t, 2)
			var other *Engine
			var once sync.Once
			f := newFixture(t, func(c *Config) {
				if tc.jsm {
					useJSM(t, c)
				}
				c.RetryWindow = 5 * time.Second
				c.Records = &lateAcks{Records: c.Records.(*ticketingtest.Records), puts: map[string]int{}, late: func(hash string, n int) {
					if hash != evs[tc.late].GetHash() || n != 2 {
						return
					}
					once.Do(func() {
						time.Sleep(c.JiraTimeout + c.ReconcileDelay + 50*time.Millisecond)
						if out := other.Process(context.Background(), items(t, evs[tc.late]))[0]; out.Status != StatusCreated {
							t.Errorf("the second worker: %+v, want it to take the stale claim over and create", out)
						}
					})
				}}
			})
			var err error
			if other, err = New(f.engine.cfg); err != nil {
				t.Fatal(err)
			}
			outs := f.process(items(t, evs...)...)
			for i, out := range outs {
				want := StatusCreated
				if i == tc.late {
					want = StatusSkipped // the other worker made it
				}
				if out.Status != want {
					t.Errorf("request %d: %v, want %v", i, out.Status, want)
				}
			}
			sent := map[string]int{}
			for _, req := range f.jira.Created {
				sent[req.HashLabel]++
			}
			for i, ev := range evs {
				if n := sent[ticket.HashLabel(ev.GetHash())]; n != 1 {
					t.Errorf("request %d sent %d times, want once", i, n)
				}
			}
		})
	}
}

// shipped is the mapping deploy/file and the sandbox's field metadata
// fixture it is checked against.
func shipped(t *testing.T, file, fixture string, parse func([]byte) (*ticket.Meta, error)) (*mapping.Mapping, *ticket.Meta) {
	t.Helper()
	m, err := mapping.Load("../../deploy/" + file)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("../jirasandbox/fixtures/" + fixture)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return m, meta
}

// useJSM switches c to the shipped JSM mapping and request type 41.
func useJSM(t *testing.T, c *Config) {
	t.Helper()
	m, meta := shipped(t, "mapping-jsm.yaml", "servicedesk-4-requesttype-41-fields.json", jira.ParseRequestTypeFields)
	c.Mapping = m
	c.Jira.(*ticketingtest.Jira).MetaFunc = func(context.Context, ticket.Target) (*ticket.Meta, error) { return meta, nil }
}

// A create ends, client side, by its oldest claim stamp + JIRA_TIMEOUT,
// however long the stamps' writes took: RecheckAfter leaves only
// RECONCILE_DELAY after that for Jira's own side. One of the two stamps
// is acknowledged late here, in a bulk and one by one (JSM).
func TestCreateEndsWithinTheClaimsWindow(t *testing.T) {
	for _, jsm := range []bool{false, true} {
		t.Run(fmt.Sprintf("jsm=%v", jsm), func(t *testing.T) {
			evs := events(t, 2)
			f := newFixture(t, func(c *Config) {
				if jsm {
					useJSM(t, c)
				}
				c.JiraTimeout = 400 * time.Millisecond
				c.Records = &lateAcks{Records: c.Records.(*ticketingtest.Records), puts: map[string]int{}, late: func(hash string, n int) {
					if hash == evs[1].GetHash() && n == 2 { // its stamp
						time.Sleep(c.JiraTimeout / 4)
					}
				}}
			})
			var mu sync.Mutex
			checked := 0
			check := func(ctx context.Context, reqs ...*ticket.Request) {
				mu.Lock()
				defer mu.Unlock()
				var oldest time.Time
				for _, req := range reqs {
					r := f.records.Record(strings.TrimPrefix(req.HashLabel, ticket.HashLabelPrefix))
					if w := r.RecheckAfter.Add(-f.engine.cfg.ReconcileDelay); oldest.IsZero() || w.Before(oldest) {
						oldest = w
					}
				}
				if by, ok := jira.CreateDeadline(ctx); !ok || !by.Equal(oldest) {
					t.Errorf("create of %d requests must end by %v (set %v), want the oldest stamp + JIRA_TIMEOUT, %v", len(reqs), by, ok, oldest)
				}
				checked += len(reqs)
			}
			f.jira.BulkCreateFunc = func(ctx context.Context, reqs []*ticket.Request) ([]jira.Result, error) {
				check(ctx, reqs...)
				out := make([]jira.Result, len(reqs))
				for i := range out {
					out[i].Key = f.jira.NextKey()
				}
				return out, nil
			}
			f.jira.CreateFunc = func(ctx context.Context, req *ticket.Request) (string, error) {
				check(ctx, req)
				return f.jira.NextKey(), nil
			}
			for i, out := range f.process(items(t, evs...)...) {
				if out.Status != StatusCreated {
					t.Errorf("request %d: %+v, want created", i, out)
				}
			}
			if checked != 2 {
				t.Errorf("%d requests checked, want 2", checked)
			}
		})
	}
}

// Stamps written at once: three claims whose stamps each take 0.3 of
// JIRA_TIMEOUT to be acknowledged still leave enough of it to send the
// bulk (one after the other they would not).
func TestBulkStampsAreWrittenConcurrently(t *testing.T) {
	evs := events(t, 3)
	hashes := map[string]bool{}
	for _, ev := range evs {
		hashes[ev.GetHash()] = true
	}
	la := &lateAcks{puts: map[string]int{}}
	f := newFixture(t, func(c *Config) {
		c.JiraTimeout, c.RetryWindow = time.Second, 3*time.Second
		la.Records = c.Records.(*ticketingtest.Records)
		la.late = func(hash string, n int) {
			if hashes[hash] && n == 2 {
				time.Sleep(c.JiraTimeout * 3 / 10)
			}
		}
		c.Records = la
	})
	for i, out := range f.process(items(t, evs...)...) {
		if out.Status != StatusCreated {
			t.Errorf("request %d: %+v, want created", i, out)
		}
	}
	la.mu.Lock()
	defer la.mu.Unlock()
	for _, ev := range evs {
		if n := la.puts[ev.GetHash()]; n != 3 {
			t.Errorf("%d record writes for one request, want 3 (claim, one stamp, created)", n)
		}
	}
	if n := f.jira.Count("BulkCreate"); n != 1 {
		t.Errorf("%d bulk creates, want 1", n)
	}
}

// A claim whose stamps all come back too late sends nothing, and the slow
// store is no failure of the event, even after a real failure earlier in
// the delivery: it ends in a retry with nothing counted, its claim
// released for the next one.
func TestSlowStampsSendNothingAndCountNothing(t *testing.T) {
	ev := events(t, 1)[0]
	f := newFixture(t, func(c *Config) {
		recs, failed := c.Records.(*ticketingtest.Records), false
		recs.Fail = func(op, _ string) error {
			if op == "get" && !failed {
				failed = true
				return errors.New("nats: timeout")
			}
			return nil
		}
		c.Records = &lateAcks{Records: recs, puts: map[string]int{}, late: func(_ string, n int) {
			if n >= 2 { // every write after the claim
				time.Sleep(c.JiraTimeout * 6 / 10)
			}
		}}
	})
	out := f.process(items(t, ev)...)[0]
	if out.Status != StatusRetry || !errors.Is(out.Err, errStaleStamp) {
		t.Errorf("%+v, want a retry for a stale stamp", out)
	}
	if n := len(f.jira.Created); n != 0 {
		t.Errorf("%d creates sent under stale stamps, want none", n)
	}
	if r := f.records.Record(ev.GetHash()); r == nil || r.Failures != 0 || r.State != stream.StateClaimed || r.RecheckAfter.After(time.Now()) {
		t.Errorf("record %+v, want the claim released (RecheckAfter passed) with no failure counted", r)
	}
}

// An early 5xx (a gateway's, while Jira may still be creating) never ends
// the stamp's window sooner: the next create waits for stamp + JIRA_TIMEOUT
// + RECONCILE_DELAY all the same.
func TestEarlyServerErrorKeepsTheStampsWindow(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.JiraTimeout, c.ReconcileDelay, c.RetryWindow = 300*time.Millisecond, 100*time.Millisecond, 3*time.Second
	})
	ev := events(t, 1)[0]
	var window time.Time
	create := func() error {
		if window.IsZero() {
			window = f.records.Record(ev.GetHash()).RecheckAfter
			return &jira.APIError{Op: "bulk create", Status: http.StatusBadGateway}
		}
		if now := time.Now(); now.Before(window) {
			t.Errorf("created again %v before the first attempt's window ended", window.Sub(now))
		}
		return nil
	}
	f.jira.BulkCreateFunc = func(_ context.Context, reqs []*ticket.Request) ([]jira.Result, error) {
		err := create()
		return []jira.Result{{Key: f.jira.NextKey(), Err: err}}, err
	}
	f.jira.CreateFunc = func(context.Context, *ticket.Request) (string, error) { return f.jira.NextKey(), create() }
	if out := f.process(items(t, ev)...)[0]; out.Status != StatusCreated || len(f.jira.Created) != 2 {
		t.Errorf("%+v after %d creates; want created by the second, after the window", out, len(f.jira.Created))
	}
}

// A worker judges a claim's window by when its search began: a claim that
// was young when a slow search started is not taken over on that
// search's empty answer.
func TestSlowSearchDoesNotAgeTheClaim(t *testing.T) {
	ev := events(t, 1)[0]
	f := newFixture(t, func(c *Config) { c.RetryWindow = 2 * time.Second })
	recheck := time.Now().Add(100 * time.Millisecond)
	f.records.Set(ev.GetHash(), stream.Record{State: stream.StateClaimed, ClaimedAt: time.Now(), RecheckAfter: recheck, Attempt: 1})
	var mu sync.Mutex
	var searches []time.Time
	f.jira.FindByLabelsFunc = func(context.Context, []string) (map[string][]string, error) {
		mu.Lock()
		searches = append(searches, time.Now())
		mu.Unlock()
		time.Sleep(200 * time.Millisecond)
		return map[string][]string{}, nil
	}
	f.jira.BulkCreateFunc = func(_ context.Context, reqs []*ticket.Request) ([]jira.Result, error) {
		mu.Lock()
		defer mu.Unlock()
		if !slices.ContainsFunc(searches, func(s time.Time) bool { return !s.Before(recheck) }) {
			t.Errorf("took the claim over on searches begun at %v, all before its window ended at %v", searches, recheck)
		}
		return []jira.Result{{Key: f.jira.NextKey()}}, nil
	}
	if out := f.process(items(t, ev)...)[0]; out.Status != StatusCreated {
		t.Errorf("%+v; want created once the window passed", out)
	}
}

// staleReads is a FORMS_TICKETS whose reads of one hash, once stuck, keep
// answering an old revision (a JetStream follower behind its leader).
type staleReads struct {
	*ticketingtest.Records
	mu    sync.Mutex
	first map[string]staleRead
	stuck bool
}

type staleRead struct {
	rec stream.Record
	rev uint64
}

func (r *staleReads) Put(ctx context.Context, hash string, rec *stream.Record, rev uint64) (uint64, error) {
	n, err := r.Records.Put(ctx, hash, rec, rev)
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.first[hash]; !ok && err == nil {
		r.first[hash] = staleRead{*rec, n}
	}
	return n, err
}

func (r *staleReads) Get(ctx context.Context, hash string) (*stream.Record, uint64, error) {
	r.mu.Lock()
	old, ok := r.first[hash]
	stuck := r.stuck
	r.mu.Unlock()
	if stuck && ok {
		return &old.rec, old.rev, nil
	}
	return r.Records.Get(ctx, hash)
}

// What a stale read shows is never written back: after an unknown outcome
// the record keeps the attempt's window even when the reads answer the
// claim as it was before the attempt's stamp.
func TestStaleReadIsNeverWrittenBack(t *testing.T) {
	ev := events(t, 1)[0]
	var st *staleReads
	f := newFixture(t, func(c *Config) {
		// The retry after an unknown outcome comes after a second.
		c.JiraTimeout, c.ReconcileDelay, c.RetryWindow = 100*time.Millisecond, time.Hour, 1500*time.Millisecond
		st = &staleReads{Records: c.Records.(*ticketingtest.Records), first: map[string]staleRead{}}
		c.Records = st
	})
	f.jira.BulkCreateFunc = func(_ context.Context, reqs []*ticket.Request) ([]jira.Result, error) {
		st.mu.Lock()
		st.stuck = true
		st.mu.Unlock()
		err := &jira.APIError{Op: "bulk create", Status: http.StatusInternalServerError}
		return []jira.Result{{Err: err}}, err
	}
	f.process(items(t, ev)...)
	if n := f.jira.Count("FindByLabels"); n == 0 {
		t.Fatalf("no reconcile ran; the stale read was never made")
	}
	// The claim before the stamp knew of no failure; the unknown outcome's
	// is noted at FirstFailure.
	if r := f.records.Record(ev.GetHash()); r == nil || r.FirstFailure.IsZero() {
		t.Errorf("record %+v; want the unknown attempt's (its failure noted), not the claim before it", r)
	}
}
