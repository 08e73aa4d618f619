package ticketer_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/jira"
	"github.com/cowjacket/formjira/internal/jirasandbox"
	"github.com/cowjacket/formjira/internal/mapping"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/testsupport"
	"github.com/cowjacket/formjira/internal/ticket"
	"github.com/cowjacket/formjira/internal/ticketer/ticketertest"
	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

// TestDeferredLabelEditsSurviveARestart: JSM mode adds the labels after the
// create. Edits left pending by an earlier run are done when the service
// starts (marker in FORMS_TICKETS) or when their hash comes again (record
// flag only); an edit Jira refuses stays pending and visible in the
// metrics; a fresh ticket gets its labels and leaves nothing pending.
func TestDeferredLabelEditsSurviveARestart(t *testing.T) {
	h := newHarness(t, jirasandbox.Options{})
	mf, _ := filepath.Abs("../../deploy/mapping-jsm.yaml")
	h.Env["MAPPING_FILE"] = mf
	addr := testsupport.FreeAddr(t)
	h.Env["HTTP_ADDR"] = addr
	ctx := context.Background()
	kv, err := stream.EnsureTickets(ctx, h.JS, stream.Config{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := mapping.Load(mf)
	if err != nil {
		t.Fatal(err)
	}
	jc, err := jira.New(jira.Options{URL: h.URL, Email: ticketertest.Email, APIToken: ticketertest.Token, APIVersion: m.APIVersion()})
	if err != nil {
		t.Fatal(err)
	}
	meta, err := jc.Meta(ctx, m.Target())
	if err != nil {
		t.Fatal(err)
	}
	// A run that created two tickets and crashed before adding their
	// labels: A with its marker, B with the record flag only.
	evs := ticketertest.SampleEvents(t)
	created := func(ev *formsv1.FormSubmission, marker bool) (string, *ticket.Request) {
		t.Helper()
		req, err := m.Build(ev, meta)
		if err != nil || !req.LabelsPending {
			t.Fatalf("build: %v (labels pending %v)", err, req != nil && req.LabelsPending)
		}
		key, err := jc.Create(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if marker {
			putJSON(t, kv, "labels."+ev.GetHash(), stream.LabelJob{Hash: ev.GetHash(), Key: key, Labels: req.Labels})
		}
		putJSON(t, kv, ev.GetHash(), stream.Record{State: stream.StateCreated, Key: key, Attempt: 1, LabelsPending: true})
		return key, req
	}
	keyA, reqA := created(evs[0], true)
	keyB, reqB := created(evs[1], false)
	// An edit Jira will refuse (the issue does not exist).
	bogus := strings.Repeat("ab", 32)
	putJSON(t, kv, "labels."+bogus, stream.LabelJob{Key: "CP-9999", Labels: []string{"cowjacket-" + bogus}})

	h.Publish(evs[1], evs[2]) // B again (skipped as ticketed), C fresh
	h.Start()
	hasLabel := func(key, label string) bool {
		for _, is := range h.SB.Issues() {
			if is.Key == key {
				return slices.Contains(is.Labels, label)
			}
		}
		return false
	}
	h.WaitFor("A's labels (from its marker)", 20*time.Second, func() bool { return hasLabel(keyA, reqA.HashLabel) })
	h.WaitFor("B's labels (its hash came again)", 20*time.Second, func() bool { return hasLabel(keyB, reqB.HashLabel) })
	h.WaitFor("C's ticket with its labels", 20*time.Second, func() bool {
		return len(h.SB.IssueByLabel("cowjacket-"+strings.ToLower(evs[2].GetHash()))) == 1
	})
	h.WaitFor("one edit left pending (the refused one)", 20*time.Second, func() bool {
		return testsupport.MetricAt(addr, "ticketer_label_edits_pending") == 1 &&
			testsupport.MetricAt(addr, `ticketer_label_edit_failures_total{class="permanent"}`) == 1
	})
	for _, ev := range evs[:3] {
		h.WaitFor("record and marker of "+ev.GetHash()[:8]+" cleared", 5*time.Second, func() bool {
			r, _, err := (stream.Tickets{KV: kv}).Get(ctx, ev.GetHash())
			_, merr := kv.Get(ctx, "labels."+ev.GetHash())
			return err == nil && r != nil && r.State == stream.StateCreated && !r.LabelsPending && merr != nil
		})
	}
	if _, err := kv.Get(ctx, "labels."+bogus); err != nil {
		t.Errorf("the refused edit's marker is gone (%v); want it kept, visible", err)
	}
	if got := len(h.SB.Issues()); got != 3 {
		t.Errorf("%d tickets, want 3", got)
	}
}

func putJSON(t *testing.T, kv jetstream.KeyValue, key string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(context.Background(), key, b); err != nil {
		t.Fatal(err)
	}
}
