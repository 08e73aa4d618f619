package main

import (
	"context"
	"strings"
	"testing"
)

// --help lists capture's alert variables with their defaults, not
// ticketer's, and never a secret's value.
func TestHelpAlertVariables(t *testing.T) {
	get := func(k string) string {
		return map[string]string{"DATABASE_URL": "postgres://u:hunter2@127.0.0.1:1/db", "ALERT_SMTP_PASSWORD": "s3cret"}[k]
	}
	var help strings.Builder
	if err := program.Run(context.Background(), []string{"--help"}, get, &help, &strings.Builder{}); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"ALERT_SMTP_ADDR", "ALERT_SMTP_USERNAME", "ALERT_SMTP_PASSWORD", "ALERT_SMTP_STARTTLS",
		"ALERT_EMAIL_FROM", "ALERT_EMAIL_TO", "ALERT_WEBHOOK_URL", "ALERT_DIGEST_INTERVAL", "ALERT_MIN_INTERVAL",
		"ALERT_CAPTURE_STALL_AFTER", "ALERT_SLOT_LAG_BYTES"} {
		if !strings.Contains(help.String(), v) {
			t.Errorf("--help lacks %s", v)
		}
	}
	for _, v := range []string{"ALERT_JIRA_DOWN_AFTER", "ALERT_BACKLOG_GROWING_AFTER", "s3cret", "hunter2", "(secret)"} {
		if strings.Contains(help.String(), v) {
			t.Errorf("--help shows %s", v)
		}
	}
	if !strings.Contains(help.String(), "1GiB") {
		t.Error("--help lacks the slot-lag default")
	}
	for _, cmd := range []string{"capture backfill [--since DATE]", "capture status", "capture healthcheck"} {
		if !strings.Contains(help.String(), cmd) {
			t.Errorf("--help lacks the command %q", cmd)
		}
	}
}
