package ticketing

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cowjacket/formjira/internal/stream"
)

// Metrics are the engine's Prometheus series. A nil *Metrics is valid and
// records nothing (one-off commands).
type Metrics struct {
	Created      prometheus.Counter
	Skipped      prometheus.Counter
	Failed       *prometheus.CounterVec // by class: rejected, unmappable, transient, auth
	DeadLettered *prometheus.CounterVec // by reason code
	Retries      prometheus.Counter
	// LabelsPending counts deferred label edits (JSM) queued, in progress
	// or refused by Jira; LabelEditFailures their failed attempts by class
	// (transient, permanent).
	LabelsPending     prometheus.Gauge
	LabelEditFailures *prometheus.CounterVec
	// CommitToTicket is the row's commit → the ticket created (rows with a
	// commit time: not backfills).
	CommitToTicket prometheus.Histogram
}

// NewMetrics registers the series with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Created: prometheus.NewCounter(prometheus.CounterOpts{Name: "ticketer_tickets_created_total", Help: "Jira tickets created."}),
		Skipped: prometheus.NewCounter(prometheus.CounterOpts{Name: "ticketer_events_skipped_total", Help: "Events whose ticket already existed (idempotency record or Jira search)."}),
		Failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ticketer_events_failed_total",
			Help: "Event processing failures by class (rejected, unmappable, undecodable, permission, transient, auth)."}, []string{"class"}),
		DeadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ticketer_dead_lettered_total",
			Help: "Events published to FORMS_DLQ, by reason."}, []string{"reason"}),
		Retries: prometheus.NewCounter(prometheus.CounterOpts{Name: "ticketer_retries_total", Help: "Retries of transient Jira failures within a delivery."}),
		LabelsPending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ticketer_label_edits_pending",
			Help: "Tickets whose labels (JSM: added after the create) are not added yet: queued, in progress or refused by Jira."}),
		LabelEditFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ticketer_label_edit_failures_total",
			Help: "Failed attempts to add a ticket's labels, by class (transient: retried; permanent: left pending)."}, []string{"class"}),
		CommitToTicket: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ticketer_commit_to_ticket_seconds",
			Help: "From the form row's commit to its ticket created in Jira.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)}),
	}
	// Every series from the start, at 0: a counter first seen at 1 has no
	// increase() for Prometheus, so the first dead letter would not alert.
	for _, class := range []string{"rejected", "unmappable", "undecodable", "permission", "transient", "auth"} {
		m.Failed.WithLabelValues(class)
	}
	for _, reason := range []string{stream.ReasonUnmappable, stream.ReasonJiraRejected, stream.ReasonExhausted, stream.ReasonPermission, stream.ReasonUndecodable} {
		m.DeadLettered.WithLabelValues(reason)
	}
	for _, class := range []string{"transient", "permanent"} {
		m.LabelEditFailures.WithLabelValues(class)
	}
	if reg != nil {
		reg.MustRegister(m.Created, m.Skipped, m.Failed, m.DeadLettered, m.Retries, m.LabelsPending, m.LabelEditFailures, m.CommitToTicket)
	}
	return m
}

func (m *Metrics) created() {
	if m != nil {
		m.Created.Inc()
	}
}

func (m *Metrics) commitToTicket(d time.Duration) {
	if m != nil {
		m.CommitToTicket.Observe(d.Seconds())
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

func (m *Metrics) failed(class string) {
	if m != nil {
		m.Failed.WithLabelValues(class).Inc()
	}
}

func (m *Metrics) deadLettered(reason string) {
	if m != nil {
		m.DeadLettered.WithLabelValues(reason).Inc()
	}
}

// labelsPending and labelEditFailures are the label editor's series (nil
// without metrics).
func (m *Metrics) labelsPending() prometheus.Gauge {
	if m == nil {
		return nil
	}
	return m.LabelsPending
}

func (m *Metrics) labelEditFailures() *prometheus.CounterVec {
	if m == nil {
		return nil
	}
	return m.LabelEditFailures
}
