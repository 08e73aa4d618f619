package stream

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ConsumerSettings are the operator-tunable parts of the ticketer consumer
// (ACK_WAIT, BACKOFF, MAX_ACK_PENDING).
type ConsumerSettings struct {
	AckWait       time.Duration
	Backoff       []time.Duration
	MaxAckPending int
}

// TicketerConsumerConfig is the durable pull consumer all ticketer replicas
// share.
func TicketerConsumerConfig(s ConsumerSettings) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       TicketerConsumer,
		Description:   "ticketer: one Jira ticket per form event",
		FilterSubject: FormsSubjects,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.AckWait,
		// Unlimited on the server: ticketer enforces MAX_DELIVER itself, so
		// an event whose last delivery dies with the process (kill, OOM) is
		// delivered again and dead-lettered, instead of silently never
		// coming back.
		MaxDeliver:    -1,
		BackOff:       s.Backoff,
		MaxAckPending: s.MaxAckPending,
	}
}
