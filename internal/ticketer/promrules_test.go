package ticketer_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/cowjacket/formjira/internal/ticketer"
	"github.com/cowjacket/formjira/internal/ticketing"
)

// collecting is a Registerer that keeps what is registered.
type collecting struct{ cs []prometheus.Collector }

func (c *collecting) Register(x prometheus.Collector) error   { c.cs = append(c.cs, x); return nil }
func (c *collecting) MustRegister(xs ...prometheus.Collector) { c.cs = append(c.cs, xs...) }
func (c *collecting) Unregister(prometheus.Collector) bool    { return false }

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// seriesNames are the sample names a metric exposes: histograms add
// _bucket, _sum and _count.
func seriesNames(name string, histogram bool) []string {
	if histogram {
		return []string{name + "_bucket", name + "_sum", name + "_count"}
	}
	return []string{name}
}

// ticketerMetricNames registers NewMetrics' series and reads their names.
func ticketerMetricNames(t *testing.T) map[string]bool {
	t.Helper()
	reg := &collecting{}
	ticketer.NewMetrics(reg)
	ticketing.NewMetrics(reg)
	out := map[string]bool{}
	for _, c := range reg.cs {
		ch := make(chan *prometheus.Desc, 16)
		c.Describe(ch)
		close(ch)
		_, histogram := c.(*prometheus.HistogramVec)
		if _, ok := c.(prometheus.Histogram); ok {
			histogram = true
		}
		for d := range ch {
			m := fqName.FindStringSubmatch(d.String())
			if m == nil {
				t.Fatalf("no name in %s", d)
			}
			for _, n := range seriesNames(m[1], histogram) {
				out[n] = true
			}
		}
	}
	return out
}

// captureMetricNames reads the series names from internal/capture's
// metrics constructor (unexported, so from its source): every Name of a
// prometheus.*Opts literal.
func captureMetricNames(t *testing.T) map[string]bool {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "../capture/metrics.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		cl, ok := n.(*ast.CompositeLit)
		if !ok {
			return true
		}
		sel, ok := cl.Type.(*ast.SelectorExpr)
		if !ok || !strings.HasSuffix(sel.Sel.Name, "Opts") {
			return true
		}
		for _, e := range cl.Elts {
			kv, ok := e.(*ast.KeyValueExpr)
			if !ok || kv.Key.(*ast.Ident).Name != "Name" {
				continue
			}
			lit, ok := kv.Value.(*ast.BasicLit)
			if !ok {
				t.Fatalf("capture metric name is not a literal: %#v", kv.Value)
			}
			name, _ := strconv.Unquote(lit.Value)
			for _, s := range seriesNames(name, sel.Sel.Name == "HistogramOpts") {
				out[s] = true
			}
		}
		return true
	})
	if len(out) < 10 {
		t.Fatalf("found only %d capture metrics: %v", len(out), out)
	}
	return out
}

// promqlWords are PromQL's functions, aggregations and keywords.
var promqlWords = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`sum min max avg count stddev stdvar topk bottomk quantile count_values group
		by without on ignoring group_left group_right and or unless bool offset
		rate irate increase delta idelta deriv changes resets predict_linear histogram_quantile
		abs absent absent_over_time clamp_max clamp_min time vector scalar label_replace
		avg_over_time min_over_time max_over_time sum_over_time count_over_time last_over_time inf nan`) {
		promqlWords[w] = true
	}
}

var (
	promStrings   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promMatchers  = regexp.MustCompile(`\{[^}]*\}`)
	promRanges    = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping  = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdent     = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promDurations = regexp.MustCompile(`^\d`)
)

// metricNames are the metric names an expression selects.
func metricNames(expr string) []string {
	s := promStrings.ReplaceAllString(expr, " ")
	s = promMatchers.ReplaceAllString(s, " ")
	s = promRanges.ReplaceAllString(s, " ")
	s = promGrouping.ReplaceAllString(s, " ")
	var out []string
	for _, loc := range promIdent.FindAllStringIndex(s, -1) {
		w := s[loc[0]:loc[1]]
		rest := strings.TrimSpace(s[loc[1]:])
		if promqlWords[w] || strings.HasPrefix(rest, "(") || promDurations.MatchString(w) {
			continue
		}
		if loc[0] > 0 && (s[loc[0]-1] >= '0' && s[loc[0]-1] <= '9' || s[loc[0]-1] == '.') {
			continue // the exponent or unit of a number
		}
		out = append(out, w)
	}
	return out
}

func TestMetricNamesFromPromQL(t *testing.T) {
	got := metricNames(`sum by (reason) (increase(a_total{x="y",z=~"b|c"}[10m])) > 0 unless on(instance) rate(b_seconds_count[5m]) > 1e9 and up{job="t"} == 0`)
	if want := []string{"a_total", "b_seconds_count", "up"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// Every metric deploy/prometheus/alerts.yml uses is exported by capture or
// ticketer, and the rules cover the conditions the services alert on.
func TestPrometheusAlertRulesUseRegisteredMetrics(t *testing.T) {
	b, err := os.ReadFile("../../deploy/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	known := ticketerMetricNames(t)
	for n := range captureMetricNames(t) {
		known[n] = true
	}
	known["up"] = true // Prometheus' own, per scrape target
	alerts := map[string]bool{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			alerts[r.Alert] = true
			if r.Alert == "" || strings.TrimSpace(r.Expr) == "" || r.Annotations["summary"] == "" || r.Labels["severity"] == "" {
				t.Errorf("group %s: incomplete rule %+v", g.Name, r)
			}
			names := metricNames(r.Expr)
			if len(names) == 0 {
				t.Errorf("%s: no metric in %q", r.Alert, r.Expr)
			}
			for _, n := range names {
				if !known[n] {
					t.Errorf("%s uses %s, which neither capture nor ticketer exports", r.Alert, n)
				}
			}
		}
	}
	// The conditions of issue 5 §3.
	for _, a := range []string{"TicketerDeadLetters", "JiraAuthenticationFailing", "JiraUnreachable", "TicketerBacklogGrowing",
		"CaptureNotConfirming", "CaptureSlotLagHigh"} {
		if !alerts[a] {
			t.Errorf("alerts.yml lacks %s", a)
		}
	}
}
