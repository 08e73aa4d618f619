package deploy_test

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	promparser "github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/promql/promqltest"
)

// TestAlertsFireWhenTheyShould evaluates alerts.yml's expressions with
// Prometheus' own engine over series as the binaries export them (as
// `promtool test rules` would): a standby capture does not page, three
// replicas exporting one shared backlog alert once, a first dead letter
// alerts (the counters start at 0), and no capture at all is noticed.
func TestAlertsFireWhenTheyShould(t *testing.T) {
	p := promparser.NewParser(promparser.Options{})
	groups, errs := rulefmt.ParseFile(filepath.Join("prometheus", "alerts.yml"), false, model.UTF8Validation, p, slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	exprs := map[string]string{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			exprs[r.Alert] = r.Expr
		}
	}
	for _, tc := range []struct {
		name, alert, load string
		at                string // evaluation time
		want              []string
	}{
		{"a standby capture is quiet", "CaptureNotConfirming", `
  capture_active{instance="a"} 1x20
  capture_active{instance="b"} 0x20
  capture_confirmed_lsn{instance="a"} 0+1000x20
  capture_confirmed_lsn{instance="b"} 0x20
  capture_replication_lag_bytes{instance="a"} 500x20
  capture_replication_lag_bytes{instance="b"} 500x20`, "15m", nil},
		{"an active capture stuck behind pending WAL pages", "CaptureNotConfirming", `
  capture_active{instance="a"} 1x20
  capture_confirmed_lsn{instance="a"} 7000x20
  capture_replication_lag_bytes{instance="a"} 500x20`, "15m", []string{`{instance="a"} 0`}},
		{"a standby capture does not stall", "CaptureStalled", `
  capture_active{instance="b"} 0x60
  capture_rows_captured_total{instance="b"} 0x60
  capture_confirmed_lsn{instance="b"} 0x60`, "45m", nil},
		{"no capture at all", "CaptureNoneActive", `
  ticketer_tickets_created_total{instance="t"} 0x20`, "15m", []string{`{} 0`}},
		{"one backlog, three replicas: one alert", "TicketerBacklogGrowing", `
  ticketer_consumer_pending{instance="t1"} 0+10x20
  ticketer_consumer_pending{instance="t2"} 0+10x20
  ticketer_consumer_pending{instance="t3"} 0+10x20`, "15m", []string{`{} 0.16666666666666666`}},
		{"the first dead letter", "TicketerDeadLetters", `
  ticketer_dead_lettered_total{reason="unmappable"} 0x10 1x10`, "15m", []string{`{reason="unmappable"} 1`}},
		{"the first capture dead letter", "CaptureDeadLetters", `
  capture_rows_dead_lettered_total{reason="too_large"} 0x10 1x10`, "15m", []string{`{reason="too_large"} 1`}},
		{"Jira refuses one replica", "JiraAuthenticationFailing", `
  ticketer_jira_refused{instance="t1"} 0x20
  ticketer_jira_refused{instance="t2"} 0x10 1x10`, "15m", []string{`{} 1`}},
		{"a 403 for one requester is no refusal", "JiraAuthenticationFailing", `
  ticketer_jira_refused{instance="t1"} 0x20
  ticketer_jira_request_duration_seconds_count{instance="t1",op="request create",status="403"} 0+1x20`, "15m", nil},
		{"no ticketer exports metrics", "TicketerAbsent", `
  capture_active{instance="a"} 1x20`, "15m", []string{`{} 1`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expr, ok := exprs[tc.alert]
			if !ok {
				t.Fatalf("alerts.yml has no %s", tc.alert)
			}
			script := fmt.Sprintf("load 1m%s\n\neval instant at %s %s\n", tc.load, tc.at, expr)
			for _, w := range tc.want {
				script += "  " + w + "\n"
			}
			promqltest.RunTest(t, script, promqltest.NewTestEngine(t, false, 0, 100000))
			if t.Failed() {
				t.Logf("%s: %s", tc.alert, strings.TrimSpace(expr))
			}
		})
	}
}
