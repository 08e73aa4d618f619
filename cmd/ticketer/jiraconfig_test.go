package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/cowjacket/formjira/internal/jirasandbox"
)

// TestReadOnlyCommandsNeedNoJiraSettings: commands that never call Jira
// (dlq list, dlq show, stats) run with NATS_URL alone, as the demo's hint
// `NATS_URL=… ticketer dlq list` does; the service and the commands that
// do call Jira still refuse to start, with one line naming the variable.
func TestReadOnlyCommandsNeedNoJiraSettings(t *testing.T) {
	h := newHarness(t, jirasandbox.Options{})
	natsOnly := func(k string) string {
		if k == "NATS_URL" {
			return h.Env[k]
		}
		return ""
	}
	run := func(get func(string) string, args ...string) (string, string, error) {
		var out, errOut bytes.Buffer
		err := run(context.Background(), args, get, &out, &errOut)
		return out.String(), errOut.String(), err
	}
	if out, errOut, err := run(natsOnly, "dlq", "list"); err != nil || !strings.Contains(out, "nothing is dead-lettered") {
		t.Errorf("dlq list with NATS_URL only: %v\n%s%s", err, out, errOut)
	}
	for _, args := range [][]string{{"dlq", "show", "1"}, {"stats"}} {
		if _, errOut, err := run(natsOnly, args...); strings.Contains(errOut, "JIRA") {
			t.Errorf("%v with NATS_URL only asks for Jira settings: %v: %s", args, err, errOut)
		}
	}
	for _, tc := range []struct {
		args []string
		get  func(string) string
		want string
	}{
		{nil, natsOnly, "JIRA_URL"},
		{[]string{"check"}, natsOnly, "JIRA_URL"},
		{[]string{"dlq", "replay", "--all"}, natsOnly, "JIRA_URL"},
		{[]string{"replay", "--from-seq", "1"}, natsOnly, "JIRA_URL"},
		{nil, func(k string) string {
			if k == "JIRA_API_TOKEN" {
				return "" // e-mail without a token
			}
			return h.Env[k]
		}, "JIRA_API_TOKEN"},
	} {
		_, errOut, err := run(tc.get, tc.args...)
		if err == nil || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tc.want+": required") {
			t.Errorf("ticketer %v: %v, stderr %q; want one line naming %s", tc.args, err, errOut, tc.want)
		}
	}
}

// TestPATRefusesRequesterMappings: a PAT is Jira Data Center's, which
// names users by username; ticketer sends Cloud accountIds for the
// requester, so such a mapping would fail at every request: refused at
// start with one line naming MAPPING_FILE.
func TestPATRefusesRequesterMappings(t *testing.T) {
	h := newHarness(t, jirasandbox.Options{})
	get := func(k string) string {
		switch k {
		case "JIRA_PAT":
			return "a-pat"
		case "JIRA_EMAIL", "JIRA_API_TOKEN":
			return ""
		}
		return h.Env[k]
	}
	for _, args := range [][]string{nil, {"check"}} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), args, get, &out, &errOut)
		if err == nil || strings.Count(errOut.String(), "\n") != 1 || !strings.Contains(errOut.String(), "MAPPING_FILE: requester is not supported with JIRA_PAT") {
			t.Errorf("ticketer %v with JIRA_PAT and a requester: %v, stderr %q", args, err, errOut.String())
		}
	}
}
