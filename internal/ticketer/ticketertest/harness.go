// Package ticketertest is the harness the ticketer's service and command
// tests share: an in-process nats-server with the streams, the Jira
// sandbox over HTTP, the service's environment, and checks that every
// request became exactly one ticket.
package ticketertest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cowjacket/formjira/internal/testsupport"
	"github.com/cowjacket/formjira/internal/ticketer"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/jirasandbox"
	"github.com/cowjacket/formjira/internal/localnats"
	"github.com/cowjacket/formjira/internal/stream"
	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

// The sandbox's credentials.
const (
	Email = "bot@cowjacket.example"
	Token = "s3cr3t-token-value"
)

// FormSubject is where capture publishes the form's rows.
var FormSubject = stream.Subject("public", "form_submissions")

// Harness is one test's pipeline without capture: events are published
// to FORMS by the test.
type Harness struct {
	T    *testing.T
	NS   *localnats.Server
	SB   *jirasandbox.Server
	URL  string // the sandbox
	NC   *nats.Conn
	JS   jetstream.JetStream
	Env  map[string]string // the service's environment
	Logs *testsupport.Buffer

	fault atomic.Pointer[func(r *http.Request, body []byte) int]
}

// Fault puts fn in front of the sandbox: a request for which it returns a
// status is answered that (as a Jira failing for that request alone would),
// without reaching the sandbox; nil removes it.
func (h *Harness) Fault(fn func(r *http.Request, body []byte) int) {
	if fn == nil {
		h.fault.Store(nil)
		return
	}
	h.fault.Store(&fn)
}

func (h *Harness) serve(w http.ResponseWriter, r *http.Request) {
	if fn := h.fault.Load(); fn != nil {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if status := (*fn)(r, body); status != 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = io.WriteString(w, `{"errorMessages":["injected by the test"],"errors":{}}`)
			return
		}
	}
	h.SB.ServeHTTP(w, r)
}

// New starts nats-server (with FORMS, FORMS_DLQ and FORMS_TICKETS) and the
// sandbox; the environment points the service at both.
// Realistic is opts with what Jira Cloud always does and a product must
// cope with, unless a test asks otherwise: search lags behind writes (by
// SearchLag when opts sets none), bulk create answers in any order, and
// raiseOnBehalfOf must be a customer's accountId. A test that needs the
// permissive sandbox sets Lenient.
func Realistic(opts jirasandbox.Options) jirasandbox.Options {
	if opts.Lenient {
		return opts
	}
	if opts.SearchDelay == 0 {
		opts.SearchDelay = SearchLag
	}
	opts.ShuffleBulk = true
	opts.StrictCustomers = true
	return opts
}

// SearchLag is the harness's default search lag: short enough for
// RECONCILE_DELAY's 300 ms, long enough that a read right after a write
// misses it.
const SearchLag = 150 * time.Millisecond

func New(t *testing.T, opts jirasandbox.Options) *Harness {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: real nats-server and Jira sandbox")
	}
	opts.Email, opts.APIToken = Email, Token
	opts = Realistic(opts)
	h := &Harness{T: t, NS: localnats.StartTB(t), SB: jirasandbox.New(opts), Logs: &testsupport.Buffer{}}
	srv := httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(srv.Close)
	h.URL = srv.URL
	nc, err := nats.Connect(h.NS.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	h.NC = nc
	if h.JS, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := stream.EnsureAll(ctx, h.JS, stream.Config{}); err != nil {
		t.Fatal(err)
	}
	mappingFile := Deploy("mapping.yaml")
	h.Env = map[string]string{
		"NATS_URL":        h.NS.URL(),
		"JIRA_URL":        h.URL,
		"JIRA_EMAIL":      Email,
		"JIRA_API_TOKEN":  Token,
		"MAPPING_FILE":    mappingFile,
		"HTTP_ADDR":       "off",
		"CONCURRENCY":     "4",
		"BATCH_WAIT":      "20ms",
		"ACK_WAIT":        "5s",
		"BACKOFF":         "5s,5s",
		"MAX_DELIVER":     "5",
		"JIRA_TIMEOUT":    "3s",
		"RECONCILE_DELAY": "300ms",
		"RETRY_WINDOW":    "20s",
		"LOG_LEVEL":       "info",
	}
	return h
}

// Getenv reads Env.
func (h *Harness) Getenv(k string) string { return h.Env[k] }

// Start runs the ticketer service in-process until the returned stop.
func (h *Harness) Start() (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		err := ticketer.Run(ctx, h.Getenv, io.Discard, h.Logs)
		if err != nil && ctx.Err() == nil {
			// The service gave up by itself: the test's setup is wrong.
			fmt.Fprintf(h.Logs, "ticketer.Run returned: %v\n", err)
		}
		done <- err
	}()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(15 * time.Second):
				h.T.Error("ticketer did not stop within 15s")
			}
		})
		return err
	}
	h.T.Cleanup(func() { _ = stop() })
	return stop
}

// SampleEvents are the 200 sample submissions as events.
func SampleEvents(t *testing.T) []*formsv1.FormSubmission {
	t.Helper()
	samples, err := form.Samples()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*formsv1.FormSubmission, len(samples))
	for i, s := range samples {
		out[i] = Event(s.Columns(), uint64(i+1))
	}
	return out
}

// Event is an event of the columns, as capture would publish it.
func Event(cols []*formsv1.Column, lsn uint64) *formsv1.FormSubmission {
	ev := form.NewEvent(cols, []string{"id"}, nil, &formsv1.Source{}, time.Now())
	ev.CapturedAt = timestamppb.Now()
	return ev
}

// Publish stores the events in FORMS.
func (h *Harness) Publish(evs ...*formsv1.FormSubmission) {
	h.T.Helper()
	ctx := context.Background()
	for _, ev := range evs {
		m, err := stream.NewMsg(FormSubject, ev)
		if err != nil {
			h.T.Fatal(err)
		}
		if _, err := h.JS.PublishMsg(ctx, m); err != nil {
			h.T.Fatal(err)
		}
	}
}

// DistinctHashes counts the events' distinct hashes.
func DistinctHashes(evs []*formsv1.FormSubmission) int {
	seen := map[string]bool{}
	for _, ev := range evs {
		seen[ev.GetHash()] = true
	}
	return len(seen)
}

// WaitFor is testsupport.WaitFor for the harness's test.
func (h *Harness) WaitFor(what string, timeout time.Duration, cond func() bool) {
	h.T.Helper()
	testsupport.WaitFor(h.T, what, timeout, cond)
}

// AssertOneTicketPerHash checks every event has exactly one ticket.
func (h *Harness) AssertOneTicketPerHash(evs []*formsv1.FormSubmission) {
	h.T.Helper()
	seen := map[string]bool{}
	for _, ev := range evs {
		if seen[ev.GetHash()] {
			continue
		}
		seen[ev.GetHash()] = true
		label := "cowjacket-" + strings.ToLower(ev.GetHash())
		if n := len(h.SB.IssueByLabel(label)); n != 1 {
			h.T.Errorf("hash %s: %d tickets, want 1", ev.GetHash(), n)
		}
	}
	if got, want := len(h.SB.Issues()), len(seen); got != want {
		h.T.Errorf("%d tickets in Jira, want %d", got, want)
	}
}

// AssertOneRequestPerHash checks every event has exactly one ticket by
// the record hash in its description (JSM requests carry their labels only
// after a deferred edit, which a duplicate would never get).
func (h *Harness) AssertOneRequestPerHash(evs []*formsv1.FormSubmission) {
	h.T.Helper()
	issues := h.SB.Issues()
	seen := map[string]bool{}
	for _, ev := range evs {
		hash := ev.GetHash()
		if seen[hash] {
			continue
		}
		seen[hash] = true
		var keys []string
		for _, is := range issues {
			if d, _ := is.Fields["description"].(string); strings.Contains(d, "Record hash: "+hash) {
				keys = append(keys, is.Key)
			}
		}
		if len(keys) != 1 {
			h.T.Errorf("hash %s: tickets %v, want 1", hash, keys)
		}
	}
	if got, want := len(issues), len(seen); got != want {
		h.T.Errorf("%d tickets in Jira, want %d", got, want)
	}
}

// DLQ is every message of FORMS_DLQ.
func (h *Harness) DLQ() []jetstream.RawStreamMsg {
	h.T.Helper()
	ctx := context.Background()
	st, err := h.JS.Stream(ctx, stream.DLQ)
	if err != nil {
		h.T.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		h.T.Fatal(err)
	}
	var out []jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		out = append(out, *m)
	}
	return out
}

// Pending is the consumer's undelivered plus unacknowledged count.
func (h *Harness) Pending() uint64 {
	c, err := h.JS.Consumer(context.Background(), stream.Forms, stream.TicketerConsumer)
	if err != nil {
		return 1
	}
	info, err := c.Info(context.Background())
	if err != nil {
		return 1
	}
	return info.NumPending + uint64(info.NumAckPending)
}

// BadDepartment is sample 2 with a department Jira does not offer.
func BadDepartment(t *testing.T) *formsv1.FormSubmission {
	t.Helper()
	samples, err := form.Samples()
	if err != nil {
		t.Fatal(err)
	}
	return Event(form.WithValue(samples[1].Columns(), "departmentname", form.Text("Astrology")), 0)
}

// Deploy is the absolute path of a file under deploy/.
func Deploy(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "deploy", name)
}

// TicketsFor counts the tickets carrying ev's hash label.
func (h *Harness) TicketsFor(ev *formsv1.FormSubmission) int {
	return len(h.SB.IssueByLabel("cowjacket-" + strings.ToLower(ev.GetHash())))
}

// KnownRequesters makes the requesters of evs customers of the sandbox's
// service desk, already in the ticketer's cache (FORMS_CUSTOMERS): the
// steady state of returning requesters, for tests about other things.
func (h *Harness) KnownRequesters(evs []*formsv1.FormSubmission) {
	h.T.Helper()
	ctx := context.Background()
	cache, err := stream.EnsureCustomers(ctx, h.JS, stream.Config{})
	if err != nil {
		h.T.Fatal(err)
	}
	for _, ev := range evs {
		email := strings.ToLower(form.String(ev, "emailaddress"))
		id := h.SB.AddCustomer(email, form.String(ev, "newusername"))
		if err := h.SB.AddToServiceDesk(id); err != nil {
			h.T.Fatal(err)
		}
		if err := cache.Put(ctx, stream.Customer{Email: email, AccountID: id, At: time.Now()}); err != nil {
			h.T.Fatal(err)
		}
	}
}

// RowEvent is an event of the columns as capture publishes a committed row
// of public.form_submissions: primary key id, commit time now, a commit
// LSN.
func RowEvent(cols []*formsv1.Column, id int64) *formsv1.FormSubmission {
	cols = append(slices.Clone(cols), &formsv1.Column{Name: "id", PgType: "bigint", Value: &formsv1.Value{Kind: &formsv1.Value_Integer{Integer: id}}})
	src := &formsv1.Source{Origin: "postgres", Database: "forms", Schema: "public", Table: "form_submissions",
		CommitLsn: fmt.Sprintf("0/%X", 0x16B3F28+id*0x100), CommitTime: timestamppb.Now(), Slot: "cowjacket"}
	ev := form.NewEvent(cols, []string{"id"}, nil, src, time.Now())
	ev.CapturedAt = timestamppb.Now()
	return ev
}
