package capture

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cowjacket/formjira/internal/stream"
)

type metrics struct {
	captured     prometheus.Counter
	published    *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	retries      prometheus.Counter
	latency      prometheus.Histogram
	inFlight     prometheus.Gauge
	confirmedLSN prometheus.Gauge
	lagBytes     prometheus.Gauge
	retainedWAL  prometheus.Gauge
	reconnects   prometheus.Counter
	active       prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		captured: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "capture_rows_captured_total", Help: "Rows of the form table read from the replication slot (re-reads after a restart included).",
		}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "capture_rows_published_total", Help: "Rows acknowledged by JetStream; result=duplicate when the Nats-Msg-Id collapsed a re-send.",
		}, []string{"result"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "capture_rows_dead_lettered_total", Help: "Rows sent to FORMS_DLQ by reason.",
		}, []string{"reason"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "capture_publish_retries_total", Help: "Re-publishes after a failed or timed-out acknowledgement.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "capture_publish_seconds", Help: "Time from publish to JetStream acknowledgement.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "capture_in_flight_rows", Help: "Rows published and not yet acknowledged.",
		}),
		confirmedLSN: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "capture_confirmed_lsn", Help: "Position up to which every row is acknowledged (what the slot is confirmed to), as a number.",
		}),
		lagBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "capture_replication_lag_bytes", Help: "pg_current_wal_lsn() - the slot's confirmed_flush_lsn.",
		}),
		retainedWAL: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "capture_slot_retained_wal_bytes", Help: "WAL the slot keeps on disk: pg_current_wal_lsn() - restart_lsn.",
		}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "capture_reconnects_total", Help: "Replication sessions re-established after a lost connection.",
		}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "capture_active", Help: "1 while this capture streams (holds the replication slot), 0 as a standby or while reconnecting.",
		}),
	}
	// Each reason from the start, at 0: a counter first seen at 1 has no
	// increase() for Prometheus, and capture's dead letters are rare.
	for _, reason := range []string{stream.ReasonUndecodable, stream.ReasonTooLarge} {
		m.deadLettered.WithLabelValues(reason)
	}
	if reg != nil {
		reg.MustRegister(m.captured, m.published, m.deadLettered, m.retries, m.latency, m.inFlight,
			m.confirmedLSN, m.lagBytes, m.retainedWAL, m.reconnects, m.active)
	}
	return m
}
