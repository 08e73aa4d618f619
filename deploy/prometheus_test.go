package deploy_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	promparser "github.com/prometheus/prometheus/promql/parser"
)

// exportedMetrics are the series the binaries can export: every
// prometheus.*Opts literal (Namespace, Subsystem, Name) in the packages of
// this module that cmd/capture and cmd/ticketer link, read from their
// source, so it holds whatever the packages are called. Histograms add
// _bucket, _sum and _count; summaries _sum and _count.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{"up": true} // Prometheus' own, per scrape target
	for _, bin := range []string{"capture", "ticketer"} {
		cmd := exec.Command("go", "list", "-deps", "-f", `{{if .Module}}{{if .Module.Main}}{{.Dir}}{{range .GoFiles}} {{.}}{{end}}{{end}}{{end}}`, "./cmd/"+bin)
		cmd.Dir = repoRoot
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list ./cmd/%s: %v", bin, err)
		}
		n := 0
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			f := strings.Fields(line)
			for _, file := range f[1:] {
				for _, name := range metricsIn(t, filepath.Join(f[0], file)) {
					out[name] = true
					n++
				}
			}
		}
		if n < 10 {
			t.Fatalf("found only %d metrics that %s exports: is the scan still right?", n, bin)
		}
	}
	return out
}

// metricsIn reads the series names of the prometheus.*Opts literals in file.
func metricsIn(t *testing.T, file string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		cl, ok := n.(*ast.CompositeLit)
		if !ok {
			return true
		}
		sel, ok := cl.Type.(*ast.SelectorExpr)
		if !ok || !strings.HasSuffix(sel.Sel.Name, "Opts") {
			return true
		}
		if x, ok := sel.X.(*ast.Ident); !ok || x.Name != "prometheus" {
			return true
		}
		parts := map[string]string{}
		for _, e := range cl.Elts {
			kv, ok := e.(*ast.KeyValueExpr)
			if !ok {
				continue
			}
			k, ok := kv.Key.(*ast.Ident)
			if !ok {
				continue
			}
			key := k.Name
			if key != "Name" && key != "Namespace" && key != "Subsystem" {
				continue
			}
			lit, ok := kv.Value.(*ast.BasicLit)
			if !ok {
				t.Fatalf("%s: metric %s is not a literal: %#v", file, key, kv.Value)
			}
			parts[key], _ = strconv.Unquote(lit.Value)
		}
		if parts["Name"] == "" {
			return true
		}
		name := prometheus.BuildFQName(parts["Namespace"], parts["Subsystem"], parts["Name"])
		switch sel.Sel.Name {
		case "HistogramOpts":
			out = append(out, name+"_bucket", name+"_sum", name+"_count")
		case "SummaryOpts":
			out = append(out, name, name+"_sum", name+"_count")
		default:
			out = append(out, name)
		}
		return true
	})
	return out
}

// TestPrometheusRules: deploy/prometheus/alerts.yml parses with
// Prometheus' own rule parser (as promtool check rules and the server load
// it: unknown fields, bad durations, PromQL and annotation templates are
// errors), every metric its expressions select is one the binaries export,
// and it covers the conditions the services alert on themselves.
func TestPrometheusRules(t *testing.T) {
	file := filepath.Join("prometheus", "alerts.yml")
	p := promparser.NewParser(promparser.Options{})
	groups, errs := rulefmt.ParseFile(file, false, model.UTF8Validation, p, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Error(err)
	}
	if len(errs) > 0 {
		return
	}
	exported := exportedMetrics(t)
	alerts := map[string]bool{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			name := r.Alert + r.Record
			alerts[name] = true
			if r.Annotations["summary"] == "" || r.Labels["severity"] == "" {
				t.Errorf("group %s: %s has no summary or severity", g.Name, name)
			}
			expr, err := p.ParseExpr(r.Expr)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			names := selectedMetrics(expr)
			if len(names) == 0 {
				t.Errorf("%s: no metric in %q", name, r.Expr)
			}
			for _, n := range names {
				if !exported[n] {
					t.Errorf("%s uses %s, which neither capture nor ticketer exports", name, n)
				}
			}
		}
	}
	for _, a := range []string{"TicketerDeadLetters", "JiraAuthenticationFailing", "JiraUnreachable", "TicketerBacklogGrowing",
		"CaptureNotConfirming", "CaptureSlotLagHigh"} {
		if !alerts[a] {
			t.Errorf("alerts.yml lacks %s", a)
		}
	}
}

// selectedMetrics are the metric names the vector selectors of expr name.
func selectedMetrics(expr promparser.Expr) []string {
	var out []string
	promparser.Inspect(expr, func(n promparser.Node, _ []promparser.Node) error {
		if vs, ok := n.(*promparser.VectorSelector); ok {
			name := vs.Name
			for _, m := range vs.LabelMatchers {
				if m.Name == model.MetricNameLabel && name == "" {
					name = m.Value
				}
			}
			if !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
		return nil
	})
	return out
}

// The rule checks must be able to fail: a typo in a metric, a bad
// expression and an unknown field are caught.
func TestPrometheusRulesCheckCanFail(t *testing.T) {
	p := promparser.NewParser(promparser.Options{})
	for _, bad := range []string{
		"groups: [{name: g, rules: [{alert: A, expr: 'rate(x[5m]'}]}]\n",
		"groups: [{name: g, rules: [{alert: A, expr: 'up == 0', fro: 5m}]}]\n",
		"groups: [{name: g, rules: [{alert: A, expr: 'up == 0', for: 5 minutes}]}]\n",
		"groups: [{name: g, rules: [{alert: A, expr: 'up == 0', annotations: {summary: '{{ $value | nosuchfunc }}'}}]}]\n",
	} {
		if _, errs := rulefmt.Parse([]byte(bad), false, model.UTF8Validation, p, slog.New(slog.DiscardHandler)); len(errs) == 0 {
			t.Errorf("parsed without error: %s", bad)
		}
	}
	expr, err := p.ParseExpr(`sum by (reason) (increase(capture_rows_dead_lettered_totl[10m])) > 0 unless on(instance) up{job="x"} == 0`)
	if err != nil {
		t.Fatal(err)
	}
	exported := exportedMetrics(t)
	if got := selectedMetrics(expr); !slices.Equal(got, []string{"capture_rows_dead_lettered_totl", "up"}) || exported[got[0]] {
		t.Errorf("selected %v; a misspelt metric must be found and unknown", got)
	}
}
