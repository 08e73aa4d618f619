package ticketing

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cowjacket/formjira/internal/jira"
	"github.com/cowjacket/formjira/internal/ticket"
)

// lagging is a JSM whose first create answers 502 although it made the
// request, and whose search and reads show nothing until indexed.
type lagging struct {
	mu      sync.Mutex
	issues  []jira.Issue
	indexed bool
	unread  bool                // reads by key miss the request (moved away)
	labeled map[string][]string // key → labels added by edits
}

func (l *lagging) install(f *fixture) {
	f.jira.CreateFunc = func(_ context.Context, req *ticket.Request) (string, error) {
		key := f.jira.NextKey()
		// Jira's text search sees the description, not the labels.
		values := maps.Clone(req.RequestFieldValues)
		delete(values, "labels")
		text, _ := json.Marshal(values)
		var labels []string
		if !req.LabelsPending {
			labels = req.Labels
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		l.issues = append(l.issues, jira.Issue{Key: key, Labels: labels, Text: string(text)})
		if len(l.issues) == 1 {
			return "", &jira.APIError{Op: jira.OpRequestCreate, Status: http.StatusBadGateway}
		}
		return key, nil
	}
	match := func(words []string, has func(jira.Issue, string) bool) map[string][]string {
		l.mu.Lock()
		defer l.mu.Unlock()
		out := map[string][]string{}
		for _, is := range l.issues {
			for _, w := range words {
				if l.indexed && has(is, w) {
					out[w] = append(out[w], is.Key)
				}
			}
		}
		return out
	}
	f.jira.FindByLabelsFunc = func(_ context.Context, labels []string) (map[string][]string, error) {
		return match(labels, func(is jira.Issue, w string) bool { return slices.Contains(is.Labels, w) }), nil
	}
	f.jira.FindByTextFunc = func(_ context.Context, _ string, words []string) (map[string][]string, error) {
		return match(words, func(is jira.Issue, w string) bool { return strings.Contains(strings.ToLower(is.Text), w) }), nil
	}
	f.jira.IssuesByKeyFunc = func(_ context.Context, keys []string) ([]jira.Issue, error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		var out []jira.Issue
		for _, is := range l.issues {
			if l.indexed && !l.unread && slices.Contains(keys, is.Key) {
				out = append(out, is)
			}
		}
		return out, nil
	}
	f.jira.AddLabelsFunc = func(_ context.Context, key string, labels ...string) error {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.labeled[key] = append(l.labeled[key], labels...)
		return nil
	}
}

// TestJSMReconcileFindsWhatTheCreateCarried: a JSM create with an unknown
// outcome carried the hash label or, without a labels field, the record
// hash in its description. The request type's fields change before the
// next delivery (fresh metadata after a restart or in a replay): reconcile
// still finds the one request, whichever it carried, and adds the labels
// it lacks.
func TestJSMReconcileFindsWhatTheCreateCarried(t *testing.T) {
	for _, tc := range []struct {
		name         string
		labelsBefore bool // the request type has a labels field at the create
		unread       bool // found by search only
	}{
		{"a labels field appears", false, false},
		{"a labels field appears, search only", false, true},
		{"the labels field goes", true, false},
		{"the labels field goes, search only", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { useJSM(t, c); c.RetryWindow = 150 * time.Millisecond })
			base, _ := f.jira.MetaFunc(context.Background(), ticket.Target{})
			withLabels := &ticket.Meta{Fields: maps.Clone(base.Fields), CanRaiseOnBehalfOf: base.CanRaiseOnBehalfOf}
			withLabels.Fields["labels"] = ticket.FieldMeta{ID: "labels", Name: "Labels", Type: "array", Items: "string"}
			before, after := base, withLabels
			if tc.labelsBefore {
				before, after = withLabels, base
			}
			f.jira.MetaFunc = func(context.Context, ticket.Target) (*ticket.Meta, error) { return before, nil }
			j := &lagging{labeled: map[string][]string{}, unread: tc.unread}
			j.install(f)
			ev := events(t, 1)[0]
			if out := f.process(items(t, ev)...)[0]; out.Status != StatusRetry {
				t.Fatalf("delivery 1: %v (%v), want a retry (outcome unknown)", out.Status, out.Err)
			}

			f.jira.MetaFunc = func(context.Context, ticket.Target) (*ticket.Meta, error) { return after, nil }
			f.engine.InvalidateMeta()
			j.mu.Lock()
			j.indexed = true
			j.mu.Unlock()
			time.Sleep(f.engine.cfg.JiraTimeout + f.engine.cfg.ReconcileDelay + 100*time.Millisecond) // past RecheckAfter

			out := f.process(items(t, ev)...)[0]
			j.mu.Lock()
			defer j.mu.Unlock()
			if len(j.issues) != 1 || out.Key != j.issues[0].Key {
				t.Fatalf("delivery 2: %v %s; %d requests in Jira, want the one found", out.Status, out.Key, len(j.issues))
			}
			hashLabel := ticket.HashLabel(ev.GetHash())
			if has := slices.Contains(j.issues[0].Labels, hashLabel) || slices.Contains(j.labeled[out.Key], hashLabel); !has {
				t.Errorf("%s carries no %s after the reconcile (labels %v, edits %v)", out.Key, hashLabel, j.issues[0].Labels, j.labeled)
			}
		})
	}
}
