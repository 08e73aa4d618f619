package ticketer

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are ticketer's Prometheus series. A nil *Metrics is valid and
// records nothing (one-off commands).
type Metrics struct {
	Created      prometheus.Counter
	Skipped      prometheus.Counter
	Failed       *prometheus.CounterVec // by class: rejected, unmappable, transient, auth
	DeadLettered *prometheus.CounterVec // by reason code
	Retries      prometheus.Counter
	Throttled    prometheus.Counter
	JiraLatency  *prometheus.HistogramVec // by op and status
	Pending      prometheus.Gauge
	AckPending   prometheus.Gauge
	Pace         prometheus.Gauge
	// LabelsPending counts deferred label edits (JSM) queued, in progress
	// or refused by Jira; LabelEditFailures their failed attempts by class
	// (transient, permanent).
	LabelsPending     prometheus.Gauge
	LabelEditFailures *prometheus.CounterVec
}

// NewMetrics registers the series with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Created: prometheus.NewCounter(prometheus.CounterOpts{Name: "ticketer_tickets_created_total", Help: "Jira tickets created."}),
		Skipped: prometheus.NewCounter(prometheus.CounterOpts{Name: "ticketer_events_skipped_total", Help: "Events whose ticket already existed (idempotency record or Jira search)."}),
		Failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ticketer_events_failed_total",
			Help: "Event processing failures by class (rejected, unmappable, transient, auth)."}, []string{"class"}),
		DeadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ticketer_dead_lettered_total",
			Help: "Events published to FORMS_DLQ, by reason."}, []string{"reason"}),
		Retries:   prometheus.NewCounter(prometheus.CounterOpts{Name: "ticketer_retries_total", Help: "Retries of transient Jira failures within a delivery."}),
		Throttled: prometheus.NewCounter(prometheus.CounterOpts{Name: "ticketer_jira_throttled_total", Help: "Jira 429 answers."}),
		JiraLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ticketer_jira_request_duration_seconds",
			Help: "Jira request latency by operation and status.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 12)}, []string{"op", "status"}),
		Pending:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "ticketer_consumer_pending", Help: "Events in FORMS not yet delivered to the ticketer consumer."}),
		AckPending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ticketer_consumer_ack_pending", Help: "Events delivered and not yet acknowledged."}),
		Pace:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "ticketer_jira_pace_per_second", Help: "Current request pace towards Jira (+Inf = unpaced)."}),
		LabelsPending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ticketer_label_edits_pending",
			Help: "Tickets whose labels (JSM: added after the create) are not added yet: queued, in progress or refused by Jira."}),
		LabelEditFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ticketer_label_edit_failures_total",
			Help: "Failed attempts to add a ticket's labels, by class (transient: retried; permanent: left pending)."}, []string{"class"}),
	}
	if reg != nil {
		reg.MustRegister(m.Created, m.Skipped, m.Failed, m.DeadLettered, m.Retries, m.Throttled, m.JiraLatency, m.Pending, m.AckPending, m.Pace,
			m.LabelsPending, m.LabelEditFailures)
	}
	return m
}

// observeJira is the jira client's Observe hook.
func (m *Metrics) observeJira(op string, status int, d time.Duration) {
	if m == nil {
		return
	}
	m.JiraLatency.WithLabelValues(op, strconv.Itoa(status)).Observe(d.Seconds())
	if status == 429 {
		m.Throttled.Inc()
	}
}

func (m *Metrics) created() {
	if m != nil {
		m.Created.Inc()
	}
}
func (m *Metrics) skipped() {
	if m != nil {
		m.Skipped.Inc()
	}
}
func (m *Metrics) retry() {
	if m != nil {
		m.Retries.Inc()
	}
}
func (m *Metrics) failed(c string) {
	if m != nil {
		m.Failed.WithLabelValues(c).Inc()
	}
}
func (m *Metrics) deadLettered(r string) {
	if m != nil {
		m.DeadLettered.WithLabelValues(r).Inc()
	}
}
func (m *Metrics) labelEditFailed(class string) {
	if m != nil {
		m.LabelEditFailures.WithLabelValues(class).Inc()
	}
}
