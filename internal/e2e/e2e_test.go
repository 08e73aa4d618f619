package e2e

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cowjacket/formjira/internal/capture"
	"github.com/cowjacket/formjira/internal/jirasandbox"
	"github.com/cowjacket/formjira/internal/localnats"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/testsupport"
	"github.com/cowjacket/formjira/internal/ticketer"
)

// TestSamplesEndToEnd: the 200 sample rows, each committed on its own,
// become 197 tickets (three are double clicks), the Sara Curtis ticket is
// right field by field; a row Jira would refuse lands in FORMS_DLQ naming
// the field, and the pipeline keeps flowing behind it.
func TestSamplesEndToEnd(t *testing.T) {
	integration(t)
	dsn := database(t)
	ns := localnats.StartTB(t)
	sb, jiraURL := sandbox(t, jirasandbox.Options{})

	cp := start(t, "capture", capture.Run, captureEnv(dsn, ns.URL()))
	tp := start(t, "ticketer", ticketer.Run, ticketerEnv(ns.URL(), jiraURL, mappingFile(t, "mapping.yaml")))
	c := connect(t, dsn)
	testsupport.WaitFor(t, "capture streaming from the slot", 20*time.Second, func() bool { return walsenderPID(c) != 0 })

	ctx := context.Background()
	s := samples(t)
	rows := make([]row, len(s))
	begin := time.Now()
	for i := range s {
		rows[i] = rowOf(s[i], nil)
		if err := insert(ctx, c, rows[i]); err != nil {
			t.Fatalf("insert sample %d: %v", i+1, err)
		}
	}
	testsupport.WaitFor(t, "197 tickets", 60*time.Second, func() bool { return len(sb.Issues()) >= 197 })
	t.Logf("200 rows committed → 197 tickets in %v", time.Since(begin).Round(time.Millisecond))
	time.Sleep(time.Second) // nothing more may come
	if n := len(sb.Issues()); n != 197 {
		t.Errorf("%d tickets, want 197", n)
	}
	checkOneTicketEach(t, sb, rows, cp, tp)
	js := natsJS(t, ns.URL())
	if d := dlq(t, js); len(d) != 0 {
		t.Errorf("%d dead letters after the samples, want 0: %v", len(d), d[0].Header)
	}
	checkSaraCurtis(t, sb, rows[0])

	// A department Jira does not offer: dead-lettered, the field named.
	astro := "Astrology"
	bad := rowOf(s[1], nil)
	{
		b := cloneSample(s[1])
		b["departmentname"] = &astro
		bad = rowOf(b, nil)
	}
	if err := insert(ctx, c, bad); err != nil {
		t.Fatal(err)
	}
	testsupport.WaitFor(t, "the bad row in FORMS_DLQ", 10*time.Second, func() bool { return len(dlq(t, js)) >= 1 })
	d := dlq(t, js)
	if len(d) != 1 {
		t.Fatalf("%d dead letters, want 1", len(d))
	}
	dl := stream.ParseDeadLetter(nats.Header(d[0].Header))
	reason := dl.Error + " | " + strings.Join(dl.FieldErrors, " | ")
	if dl.Hash != bad.hash || !strings.Contains(reason, "customfield_10073") || !strings.Contains(reason, "Department") ||
		!strings.Contains(reason, "Astrology") {
		t.Errorf("dead letter hash %s (want %s), reason %q: want customfield_10073 (Department) and the value named", dl.Hash, bad.hash, reason)
	}
	if dl.Reason != stream.ReasonUnmappable && dl.Reason != stream.ReasonJiraRejected {
		t.Errorf("dead letter reason code %q", dl.Reason)
	}
	t.Logf("dead letter: %s: %s", dl.Reason, reason)

	// The next good row still becomes a ticket within a second or two.
	next := "inserted after the bad row"
	good := rowOf(s[2], &next)
	committed := time.Now()
	if err := insert(ctx, c, good); err != nil {
		t.Fatal(err)
	}
	testsupport.WaitFor(t, "a ticket for the row after the bad one", 5*time.Second, func() bool { return len(sb.IssueByLabel(good.label())) > 0 })
	lat := sb.IssueByLabel(good.label())[0].Created.Sub(committed)
	t.Logf("row after the bad one: ticket %v after commit", lat.Round(time.Millisecond))
	if lat > 2*time.Second {
		t.Errorf("row after the bad one took %v to become a ticket, want ≤ 2s", lat)
	}
	if n := len(sb.Issues()); n != 198 {
		t.Errorf("%d tickets, want 198", n)
	}
}

func checkSaraCurtis(t *testing.T, sb *jirasandbox.Server, r row) {
	t.Helper()
	got := sb.IssueByLabel(r.label())
	if len(got) != 1 {
		t.Fatalf("%d Sara Curtis tickets, want 1", len(got))
	}
	is := got[0]
	f := is.Fields
	for id, want := range map[string]string{
		"customfield_10070": "Sara Curtis",
		"customfield_10071": "Sara",
		"customfield_10072": "08196712915",
		"customfield_10074": "Data Engineer",
		"customfield_10075": "sara.curtis@example.com",
		"customfield_10076": "5540221908", // cost center: text
		"customfield_10080": "2025-10-28",
		"customfield_10081": "2025-11-22",
		"customfield_10083": "2025-10-24",
	} {
		if s, ok := f[id].(string); !ok || s != want {
			t.Errorf("Sara Curtis %s = %#v, want %q", id, f[id], want)
		}
	}
	for id, want := range map[string][]string{
		"customfield_10073": {"Finance"},
		"customfield_10077": {"New extension including new cabling and socket"},
		"customfield_10078": {"Handset speaker phone", "Mobile phone", "SIM card only"},
		"customfield_10079": {"Temporary use (three months or less)"},
	} {
		if v := optionValues(f[id]); !slices.Equal(v, want) {
			t.Errorf("Sara Curtis %s = %v, want %v", id, v, want)
		}
	}
	if s := is.Summary(); s != "Phone request: Sara Curtis (Finance)" {
		t.Errorf("Sara Curtis summary %q", s)
	}
	b, _ := json.Marshal(f["customfield_10082"])
	if !strings.Contains(string(b), "Replace faulty handset") || !strings.Contains(string(b), `"type":"doc"`) {
		t.Errorf("Sara Curtis comments (ADF) = %s", b)
	}
	if p, _ := json.Marshal(f["project"]); !strings.Contains(string(p), "CP") && !strings.Contains(string(p), "100") {
		t.Errorf("Sara Curtis project = %s", p)
	}
	if !slices.Contains(is.Labels, "web-form") || !slices.Contains(is.Labels, r.label()) {
		t.Errorf("Sara Curtis labels %v", is.Labels)
	}
}

// optionValues are the "value"s of a select (object) or checkboxes (array).
func optionValues(v any) []string {
	switch x := v.(type) {
	case map[string]any:
		s, _ := x["value"].(string)
		return []string{s}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, optionValues(e)...)
		}
		return out
	}
	return nil
}
