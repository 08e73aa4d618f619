package ticketer

import (
	"context"
	"io"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cowjacket/formjira/internal/testsupport"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/jirasandbox"
	"github.com/cowjacket/formjira/internal/localnats"
	"github.com/cowjacket/formjira/internal/stream"
	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

const (
	testEmail = "bot@cowjacket.example"
	testToken = "s3cr3t-token-value"
)

var formSubject = stream.Subject("public", "form_submissions")

type harness struct {
	t    *testing.T
	ns   *localnats.Server
	sb   *jirasandbox.Server
	url  string
	nc   *nats.Conn
	js   jetstream.JetStream
	env  map[string]string
	logs *syncBuffer
}

type syncBuffer = testsupport.Buffer

func newHarness(t *testing.T, opts jirasandbox.Options) *harness {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: real nats-server and Jira sandbox")
	}
	opts.Email, opts.APIToken = testEmail, testToken
	h := &harness{t: t, ns: localnats.StartTB(t), sb: jirasandbox.New(opts), logs: &syncBuffer{}}
	srv := httptest.NewServer(h.sb)
	t.Cleanup(srv.Close)
	h.url = srv.URL
	nc, err := nats.Connect(h.ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	h.nc = nc
	if h.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := stream.EnsureAll(ctx, h.js, stream.Config{}); err != nil {
		t.Fatal(err)
	}
	mappingFile, _ := filepath.Abs("../../deploy/mapping.yaml")
	h.env = map[string]string{
		"NATS_URL":        h.ns.URL(),
		"JIRA_URL":        h.url,
		"JIRA_EMAIL":      testEmail,
		"JIRA_API_TOKEN":  testToken,
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

func (h *harness) getenv(k string) string { return h.env[k] }

// start runs the ticketer service in-process until the returned stop.
func (h *harness) start() (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, nil, h.getenv, io.Discard, h.logs) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(15 * time.Second):
				h.t.Error("ticketer did not stop within 15s")
			}
		})
		return err
	}
	h.t.Cleanup(func() { _ = stop() })
	return stop
}

func sampleEvents(t *testing.T) []*formsv1.FormSubmission {
	t.Helper()
	samples, err := form.Samples()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*formsv1.FormSubmission, len(samples))
	for i, s := range samples {
		out[i] = event(s.Columns(), uint64(i+1))
	}
	return out
}

func event(cols []*formsv1.Column, lsn uint64) *formsv1.FormSubmission {
	ev := form.NewEvent(cols, []string{"id"}, nil, &formsv1.Source{}, time.Now())
	ev.CapturedAt = timestamppb.Now()
	return ev
}

func (h *harness) publish(evs ...*formsv1.FormSubmission) {
	h.t.Helper()
	ctx := context.Background()
	for _, ev := range evs {
		m, err := stream.NewMsg(formSubject, ev)
		if err != nil {
			h.t.Fatal(err)
		}
		if _, err := h.js.PublishMsg(ctx, m); err != nil {
			h.t.Fatal(err)
		}
	}
}

// distinctHashes counts the events' distinct hashes.
func distinctHashes(evs []*formsv1.FormSubmission) int {
	seen := map[string]bool{}
	for _, ev := range evs {
		seen[ev.GetHash()] = true
	}
	return len(seen)
}

// waitFor polls cond until it holds or timeout passes.
func (h *harness) waitFor(what string, timeout time.Duration, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// assertOneTicketPerHash checks every event has exactly one ticket.
func (h *harness) assertOneTicketPerHash(evs []*formsv1.FormSubmission) {
	h.t.Helper()
	seen := map[string]bool{}
	for _, ev := range evs {
		if seen[ev.GetHash()] {
			continue
		}
		seen[ev.GetHash()] = true
		label := "cowjacket-" + strings.ToLower(ev.GetHash())
		if n := len(h.sb.IssueByLabel(label)); n != 1 {
			h.t.Errorf("hash %s: %d tickets, want 1", ev.GetHash(), n)
		}
	}
	if got, want := len(h.sb.Issues()), len(seen); got != want {
		h.t.Errorf("%d tickets in Jira, want %d", got, want)
	}
}

// assertOneRequestPerHash checks every event has exactly one ticket by
// the record hash in its description (JSM requests carry their labels only
// after a deferred edit, which a duplicate would never get).
func (h *harness) assertOneRequestPerHash(evs []*formsv1.FormSubmission) {
	h.t.Helper()
	issues := h.sb.Issues()
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
			h.t.Errorf("hash %s: tickets %v, want 1", hash, keys)
		}
	}
	if got, want := len(issues), len(seen); got != want {
		h.t.Errorf("%d tickets in Jira, want %d", got, want)
	}
}

func (h *harness) dlq() []jetstream.RawStreamMsg {
	h.t.Helper()
	ctx := context.Background()
	st, err := h.js.Stream(ctx, stream.DLQ)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		h.t.Fatal(err)
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

// pending is the consumer's undelivered plus unacknowledged count.
func (h *harness) pending() uint64 {
	c, err := h.js.Consumer(context.Background(), stream.Forms, stream.TicketerConsumer)
	if err != nil {
		return 1
	}
	info, err := c.Info(context.Background())
	if err != nil {
		return 1
	}
	return info.NumPending + uint64(info.NumAckPending)
}

func badDepartment(t *testing.T) *formsv1.FormSubmission {
	t.Helper()
	samples, err := form.Samples()
	if err != nil {
		t.Fatal(err)
	}
	return event(withColumn(samples[1].Columns(), "departmentname", form.Text("Astrology")), 0)
}
