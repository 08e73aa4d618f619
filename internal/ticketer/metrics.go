package ticketer

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the service's own Prometheus series (the engine's are
// ticketing.Metrics): Jira's latency and throttling, the consumer's backlog,
// the pace.
type Metrics struct {
	Throttled   prometheus.Counter
	JiraLatency *prometheus.HistogramVec // by op and status
	Pending     prometheus.Gauge
	AckPending  prometheus.Gauge
	Pace        prometheus.Gauge
}

// NewMetrics registers the series with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Throttled: prometheus.NewCounter(prometheus.CounterOpts{Name: "ticketer_jira_throttled_total", Help: "Jira 429 answers."}),
		JiraLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ticketer_jira_request_duration_seconds",
			Help: "Jira request latency by operation and status.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 12)}, []string{"op", "status"}),
		Pending:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "ticketer_consumer_pending", Help: "Events in FORMS not yet delivered to the ticketer consumer."}),
		AckPending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ticketer_consumer_ack_pending", Help: "Events delivered and not yet acknowledged."}),
		Pace:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "ticketer_jira_pace_per_second", Help: "Current request pace towards Jira (+Inf = unpaced)."}),
	}
	reg.MustRegister(m.Throttled, m.JiraLatency, m.Pending, m.AckPending, m.Pace)
	return m
}

// observeJira is the jira client's Observe hook.
func (m *Metrics) observeJira(op string, status int, d time.Duration) {
	m.JiraLatency.WithLabelValues(op, strconv.Itoa(status)).Observe(d.Seconds())
	if status == 429 {
		m.Throttled.Inc()
	}
}
