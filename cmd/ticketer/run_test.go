package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/cowjacket/formjira/internal/jirasandbox"
	"github.com/cowjacket/formjira/internal/ticketer"
	"github.com/cowjacket/formjira/internal/ticketer/ticketertest"
)

func TestHelpShowsEveryVariableAndNoSecret(t *testing.T) {
	var out bytes.Buffer
	env := map[string]string{"JIRA_API_TOKEN": "hunter2-secret", "JIRA_PAT": "pat-secret"}
	if err := run(context.Background(), []string{"--help"}, func(k string) string { return env[k] }, &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, v := range ticketer.Vars {
		if !strings.Contains(out.String(), v.Name) {
			t.Errorf("--help lacks %s", v.Name)
		}
	}
	if strings.Contains(out.String(), "hunter2") || strings.Contains(out.String(), "pat-secret") {
		t.Errorf("--help shows a secret:\n%s", out.String())
	}
}

func TestBadConfigIsOneLineNamingTheVariable(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"JIRA_URL":    {},
		"BATCH_SIZE":  {"JIRA_URL": "https://x.example", "JIRA_PAT": "p", "BATCH_SIZE": "80"},
		"JIRA_EMAIL":  {"JIRA_URL": "https://x.example", "JIRA_API_TOKEN": "tok-secret"},
		"BACKOFF":     {"JIRA_URL": "https://x.example", "JIRA_PAT": "p", "BACKOFF": "soon"},
		"CONCURRENCY": {"JIRA_URL": "https://x.example", "JIRA_PAT": "p", "CONCURRENCY": "0"},
	} {
		var stderr bytes.Buffer
		err := run(context.Background(), nil, func(k string) string { return env[k] }, &bytes.Buffer{}, &stderr)
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		line := stderr.String()
		if strings.Count(line, "\n") != 1 || !strings.Contains(line, name) || strings.Contains(line, "secret") {
			t.Errorf("%s: stderr %q", name, line)
		}
	}
}

func TestCheckAgainstSandbox(t *testing.T) {
	h := newHarness(t, jirasandbox.Options{})
	h.Publish(ticketertest.SampleEvents(t)[:20]...)
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"check"}, h.Getenv, &out, &errOut); err != nil {
		t.Fatalf("check: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "customfield_10073") || !strings.Contains(out.String(), "20 event") {
		t.Errorf("check output:\n%s", out.String())
	}
	// A value Jira refuses, in the stream: check names it and fails.
	h.Publish(ticketertest.BadDepartment(t))
	out.Reset()
	err := run(context.Background(), []string{"check"}, h.Getenv, &out, &errOut)
	if err == nil || !strings.Contains(out.String(), "Astrology") {
		t.Errorf("check with a bad value: err %v\n%s", err, out.String())
	}
}
