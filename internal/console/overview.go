package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/jirasite"
	"github.com/cowjacket/formjira/internal/stats"
	"github.com/cowjacket/formjira/internal/stream"
)

// Overview is the pipeline's health at a glance (GET /api/status).
type Overview struct {
	At       time.Time              `json:"at"`
	Healthy  bool                   `json:"healthy"`
	Problems []string               `json:"problems"`
	Captures []stream.CaptureStatus `json:"captures"`
	Forms    FormsState             `json:"forms"`
	Consumer ConsumerState          `json:"consumer"`
	Tickets  TicketCounts           `json:"tickets"`
	DLQ      uint64                 `json:"dead_letters_waiting"`
	Jira     JiraState              `json:"jira"`
	Days     []stats.DayStats       `json:"days"`
}

// FormsState is stream FORMS.
type FormsState struct {
	Messages uint64 `json:"messages"`
	Bytes    uint64 `json:"bytes"`
	LastSeq  uint64 `json:"last_seq"`
}

// ConsumerState is the ticketer consumer on FORMS.
type ConsumerState struct {
	Found       bool   `json:"found"`
	Backlog     uint64 `json:"backlog"`     // not yet delivered
	AckPending  int    `json:"ack_pending"` // delivered, not settled
	Redelivered int    `json:"redelivered"`
	Delivered   uint64 `json:"delivered_seq"`
}

// TicketCounts are tickets created lately.
type TicketCounts struct {
	LastHour int   `json:"last_hour"`
	Today    int64 `json:"today"`
}

// JiraState is what the ticketer replicas saw of Jira.
type JiraState struct {
	Circuit      jirasite.Circuit `json:"circuit"`
	Replicas     int              `json:"replicas"` // reporting health
	LastSuccess  time.Time        `json:"last_success,omitzero"`
	LastFailure  time.Time        `json:"last_failure,omitzero"`
	Throttled15m int64            `json:"throttled_15m"`
	LastThrottle time.Time        `json:"last_throttle,omitzero"`
	P50MS        float64          `json:"latency_p50_ms"`
	P99MS        float64          `json:"latency_p99_ms"`
	Samples      int              `json:"latency_samples"`
}

// chartDays is how many days the overview's chart shows.
const chartDays = 14

// overview reads everything the overview shows from JetStream.
func overview(ctx context.Context, js jetstream.JetStream) (*Overview, error) {
	now := time.Now().UTC()
	o := &Overview{At: now, Problems: []string{}}
	var err error
	if o.Captures, err = stream.ReadCaptureStatus(ctx, js); err != nil {
		return nil, err
	}
	if o.Captures == nil {
		o.Captures = []stream.CaptureStatus{}
	}
	if st, err := js.Stream(ctx, stream.Forms); err == nil {
		s := st.CachedInfo().State
		o.Forms = FormsState{Messages: s.Msgs, Bytes: s.Bytes, LastSeq: s.LastSeq}
		if c, err := st.Consumer(ctx, stream.TicketerConsumer); err == nil {
			ci := c.CachedInfo()
			o.Consumer = ConsumerState{Found: true, Backlog: ci.NumPending, AckPending: ci.NumAckPending, Redelivered: ci.NumRedelivered, Delivered: ci.Delivered.Stream}
		}
	} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("stream %s: %w", stream.Forms, err)
	}
	if st, err := js.Stream(ctx, stream.DLQ); err == nil {
		o.DLQ = st.CachedInfo().State.Msgs
	}
	first := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, -(chartDays - 1))
	if o.Days, err = stats.Read(ctx, js, first, chartDays); err != nil {
		return nil, err
	}
	o.Tickets.Today = o.Days[len(o.Days)-1].Created
	if o.Tickets.LastHour, err = ticketsSince(ctx, js, now.Add(-time.Hour)); err != nil {
		return nil, err
	}
	if o.Jira, err = jiraState(ctx, js); err != nil {
		return nil, err
	}
	o.judge()
	return o, nil
}

// ticketsSince counts the tickets recorded since from (records of
// FORMS_TICKETS written since then; at most maxCounted are read).
func ticketsSince(ctx context.Context, js jetstream.JetStream, from time.Time) (int, error) {
	const maxCounted = 50_000
	st, err := js.Stream(ctx, stream.TicketsStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, read := 0, 0
	err = stream.ReadAll(ctx, st, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &from},
		func(m jetstream.Msg) bool {
			read++
			var r stream.Record
			if json.Unmarshal(m.Data(), &r) == nil && r.State == stream.StateCreated && !r.CreatedAt.Before(from) {
				n++
			}
			return read < maxCounted
		})
	return n, err
}

func jiraState(ctx context.Context, js jetstream.JetStream) (JiraState, error) {
	var j JiraState
	var err error
	if j.Circuit, err = jirasite.ReadCircuit(ctx, js); err != nil {
		return j, err
	}
	hs, err := stream.ReadJiraHealth(ctx, js)
	if err != nil {
		return j, err
	}
	var lat []float64
	for _, h := range hs {
		j.Replicas++
		j.LastSuccess = later(j.LastSuccess, h.LastSuccess)
		j.LastFailure = later(j.LastFailure, h.LastFailure)
		j.LastThrottle = later(j.LastThrottle, h.LastThrottle)
		j.Throttled15m += h.Throttled15m
		lat = append(lat, h.LatencyMS...)
	}
	slices.Sort(lat)
	j.Samples = len(lat)
	j.P50MS, j.P99MS = percentile(lat, 0.5), percentile(lat, 0.99)
	return j, nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*q+0.999999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// judge says whether the pipeline is healthy, and if not, why.
func (o *Overview) judge() {
	active := 0
	for _, c := range o.Captures {
		if c.Role == stream.RoleActive {
			active++
			if !c.ConfirmedAt.IsZero() && o.At.Sub(c.ConfirmedAt) > 5*time.Minute && c.SlotLagBytes > 0 {
				o.Problems = append(o.Problems, fmt.Sprintf("capture %s has not confirmed for %s", c.Instance, o.At.Sub(c.ConfirmedAt).Round(time.Second)))
			}
			if c.LastError != "" && o.At.Sub(c.LastErrorAt) < 5*time.Minute {
				o.Problems = append(o.Problems, "capture: "+c.LastError)
			}
		}
	}
	if active == 0 {
		o.Problems = append(o.Problems, "no capture is active: new rows are not captured")
	}
	if !o.Consumer.Found {
		o.Problems = append(o.Problems, "no ticketer consumer on FORMS: has the ticketer service run?")
	}
	if o.Jira.Circuit.State == "open" {
		o.Problems = append(o.Problems, "Jira unreachable since "+o.Jira.Circuit.Since.Format(time.RFC3339)+": events are held")
	}
	if o.Jira.Replicas == 0 {
		o.Problems = append(o.Problems, "no ticketer replica is reporting: is the ticketer service running?")
	}
	if o.DLQ > 0 {
		o.Problems = append(o.Problems, fmt.Sprintf("%d dead letter(s) waiting", o.DLQ))
	}
	o.Healthy = len(o.Problems) == 0
}
