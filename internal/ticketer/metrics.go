package ticketer

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cowjacket/formjira/internal/jirasite"
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
	// IndexDropped counts request-index updates a full queue refused.
	IndexDropped prometheus.Counter
	// Circuit is Jira's circuit here (0 closed, 2 open; probes run while
	// open);
	// CircuitSeconds the time spent in each state.
	Circuit        prometheus.Gauge
	CircuitSeconds *prometheus.CounterVec
	// Refused is 1 while Jira refuses the credentials or a permission every
	// create needs, so this replica does not consume.
	Refused prometheus.Gauge

	mu        sync.Mutex
	state     jirasite.State
	stateFrom time.Time
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
		IndexDropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "ticketer_index_dropped_total",
			Help: "Request index (trace, console) updates dropped because their queue was full: trace may show an older state of those requests."}),
		Circuit: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ticketer_jira_circuit_state",
			Help: "Jira's circuit as this replica sees it: 0 closed (Jira works), 2 open (Jira down: events held, only probes sent)."}),
		Refused: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ticketer_jira_refused",
			Help: "1 while Jira refuses ticketer's credentials (401, or served as anonymous) or a permission every create needs: this replica does not consume."}),
		CircuitSeconds: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ticketer_jira_circuit_seconds_total",
			Help: "Seconds spent in each state of Jira's circuit."}, []string{"state"}),
		stateFrom: time.Now(),
	}
	for _, st := range []jirasite.State{jirasite.Closed, jirasite.HalfOpen, jirasite.Open} {
		m.CircuitSeconds.WithLabelValues(st.String())
	}
	reg.MustRegister(m.Throttled, m.JiraLatency, m.Pending, m.AckPending, m.Pace, m.Circuit, m.CircuitSeconds, m.IndexDropped, m.Refused)
	return m
}

// observeJira is the jira client's Observe hook.
func (m *Metrics) observeJira(op string, status int, d time.Duration) {
	m.JiraLatency.WithLabelValues(op, strconv.Itoa(status)).Observe(d.Seconds())
	if status == 429 {
		m.Throttled.Inc()
	}
}

// circuit moves the circuit metrics to st (st again: only the time counts).
func (m *Metrics) circuit(st jirasite.State) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	m.CircuitSeconds.WithLabelValues(m.state.String()).Add(now.Sub(m.stateFrom).Seconds())
	m.state, m.stateFrom = st, now
	m.Circuit.Set(float64(st))
}

// tick adds the time spent in the current state so far.
func (m *Metrics) tick() {
	m.mu.Lock()
	st := m.state
	m.mu.Unlock()
	m.circuit(st)
}
