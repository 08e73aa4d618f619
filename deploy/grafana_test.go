package deploy_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	promparser "github.com/prometheus/prometheus/promql/parser"
)

// grafanaDashboard is the part of Grafana's dashboard JSON model the file
// uses; decoding is strict, so a misspelt key is an error.
type grafanaDashboard struct {
	Title         string            `json:"title"`
	UID           string            `json:"uid"`
	Description   string            `json:"description"`
	Tags          []string          `json:"tags"`
	Timezone      string            `json:"timezone"`
	SchemaVersion int               `json:"schemaVersion"`
	Version       int               `json:"version"`
	Editable      bool              `json:"editable"`
	Refresh       string            `json:"refresh"`
	Time          map[string]string `json:"time"`
	Templating    struct {
		List []map[string]any `json:"list"`
	} `json:"templating"`
	Annotations map[string]any `json:"annotations"`
	Links       []any          `json:"links"`
	Panels      []struct {
		ID          int                      `json:"id"`
		Type        string                   `json:"type"`
		Title       string                   `json:"title"`
		Description string                   `json:"description"`
		Datasource  map[string]any           `json:"datasource"`
		GridPos     struct{ X, Y, W, H int } `json:"gridPos"`
		FieldConfig map[string]any           `json:"fieldConfig"`
		Options     map[string]any           `json:"options"`
		Targets     []struct {
			RefID        string         `json:"refId"`
			Expr         string         `json:"expr"`
			LegendFormat string         `json:"legendFormat"`
			Datasource   map[string]any `json:"datasource"`
		} `json:"targets"`
	} `json:"panels"`
}

// TestGrafanaDashboard: deploy/grafana/*.json decode strictly as dashboards,
// every query parses as PromQL and names only metrics the binaries export
// (the same scan as the alert rules'), and the topics are there.
// sharedGauges are the same value on every ticketer replica.
var sharedGauges = map[string]bool{"ticketer_consumer_pending": true, "ticketer_consumer_ack_pending": true, "ticketer_jira_pace_per_second": true}

func TestGrafanaDashboard(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("grafana", "*.json"))
	if len(files) == 0 {
		t.Fatal("no dashboard in deploy/grafana")
	}
	exported := exportedMetrics(t)
	p := promparser.NewParser(promparser.Options{})
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		var d grafanaDashboard
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		var used []string
		ids := map[int]bool{}
		for _, pn := range d.Panels {
			if ids[pn.ID] || pn.ID == 0 {
				t.Errorf("%s: panel %q: id %d missing or repeated", file, pn.Title, pn.ID)
			}
			ids[pn.ID] = true
			if len(pn.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", file, pn.Title)
			}
			for _, tg := range pn.Targets {
				expr, err := p.ParseExpr(tg.Expr)
				if err != nil {
					t.Errorf("%s: panel %q: %v", file, pn.Title, err)
					continue
				}
				for _, n := range selectedMetrics(expr) {
					// Every replica exports the one shared consumer's
					// backlog and the site's pace: summed, they multiply.
					if sharedGauges[n] && strings.Contains(tg.Expr, "sum(") {
						t.Errorf("%s: panel %q sums %s, which every replica exports alike: use max", file, pn.Title, n)
					}
					used = append(used, n)
					if !exported[n] {
						t.Errorf("%s: panel %q uses %s, which neither capture nor ticketer exports", file, pn.Title, n)
					}
				}
			}
		}
		for _, m := range []string{"ticketer_tickets_created_total", "ticketer_commit_to_ticket_seconds_bucket", "ticketer_consumer_pending",
			"capture_replication_lag_bytes", "ticketer_dead_lettered_total", "ticketer_jira_throttled_total", "ticketer_jira_circuit_state"} {
			if !slices.Contains(used, m) {
				t.Errorf("%s: no panel shows %s", file, m)
			}
		}
	}
}
