package stream

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// FORMS_STATS: ticketer's daily counters (see internal/stats).
const (
	Stats         = "FORMS_STATS"
	StatsSubjects = "forms.stats.>"
)

// StatSubject is the counter of one UTC day ("2006-01-02") and figure.
func StatSubject(day, name string) string { return "forms.stats." + day + "." + name }

// StatsConfig is stream FORMS_STATS: a JetStream counter stream
// (AllowMsgCounter), one counter per day and figure, kept 400 days. Each
// replica adds its own counts with a Nats-Incr header and the server keeps
// the sum.
func StatsConfig(c Config) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              Stats,
		Description:       "ticketer daily counters (created, failed, skipped, dead_lettered), summed over replicas (counter stream)",
		Subjects:          []string{StatsSubjects},
		Storage:           jetstream.FileStorage,
		Retention:         jetstream.LimitsPolicy,
		Replicas:          c.replicas(),
		MaxAge:            400 * 24 * time.Hour,
		MaxMsgsPerSubject: 1, // the last message holds the running total
		// An increment re-sent after a lost acknowledgement collapses
		// within the window, and the daily summary's claim across replicas
		// with clocks apart: both may come long after (a NATS outage).
		Duplicates:      time.Hour,
		Discard:         jetstream.DiscardOld,
		AllowMsgCounter: true,
	}
}
