// Package stream is the JetStream side of the contract: stream, subject and
// bucket names, their configurations, the event codec and the dead-letter
// headers. capture, ticketer and deploy/ all take them from here.
package stream

import (
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/config"
)

// Names fixed by the design: operators, deploy files and alerts use them.
const (
	Forms         = "FORMS"
	FormsSubjects = "forms.submitted.>"
	DLQ           = "FORMS_DLQ"
	DLQSubjects   = "forms.dlq.>"
	// DLQCapture receives rows capture could not turn into an event.
	DLQCapture = "forms.dlq.capture"
	// DLQTicketer receives events ticketer could not turn into a ticket.
	DLQTicketer = "forms.dlq.ticketer"
	// TicketsBucket maps record hash → Jira key (the idempotency record).
	TicketsBucket = "FORMS_TICKETS"
	// TicketerConsumer is the durable pull consumer all ticketer replicas share.
	TicketerConsumer = "ticketer"
)

// Resource is one JetStream stream, bucket or consumer of the pipeline and
// who may create it. Its Owner creates and updates it at start; the binaries
// in CreateIfMissing create it only when it is missing (starting first),
// never rewriting the owner's settings; one-off commands (dlq, replay,
// stats, status, check) only look resources up and fail when one is
// missing.
type Resource struct {
	Name            string
	Kind            string // "stream", "kv" or "consumer"
	Owner           config.Binary
	CreateIfMissing config.Binary
	Holds           string
}

// Resources is the ownership table.
var Resources = []Resource{
	{Forms, "stream", config.Capture, config.Ticketer, "every captured row, the replay source"},
	{CaptureStatusBucket, "kv", config.Capture, 0, "each capture's status (active or standby, confirmed LSN, slot lag) for capture status and the console"},
	{DLQ, "stream", 0, config.Both, "dead letters of both binaries (neither rewrites it)"},
	{TicketsBucket, "kv", config.Ticketer, 0, "hash → ticket record (claims, keys, pending label edits)"},
	{Stats, "stream", config.Ticketer, 0, "daily counters, summed over replicas"},
	{CustomersBucket, "kv", config.Ticketer, 0, "requester e-mail → Jira accountId (JSM customers found or created)"},
	{JiraBucket, "kv", config.Ticketer, 0, "the replicas' shared view of Jira: circuit, pace, live replicas"},
	{TicketerConsumer, "consumer", config.Ticketer, 0, "the durable consumer on FORMS all ticketer replicas share"},
	{IndexBucket, "kv", config.Ticketer, 0, "request index for trace and the console: e-mail, name, row id, Jira key → hash; hash → FORMS seq, last outcome"},
	{Audit, "stream", config.Ticketer, 0, "operator actions of the console (replays): who, what, when, outcome; created when missing and written by `ticketer console`"},
}

// Subject is where capture publishes rows of schema.table:
// forms.submitted.<schema>.<table>. NATS tokens cannot hold '.', ' ', '*' or
// '>', so such characters in (quoted) identifiers become '_'.
func Subject(schema, table string) string {
	return "forms.submitted." + token(schema) + "." + token(table)
}

func token(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '.', ' ', '*', '>', '\t', '\r', '\n':
			return '_'
		}
		return r
	}, s)
}

// Vars are the variables of the stream layout.
var Vars = []config.Var{
	{Name: "STREAM_REPLICAS", For: config.Both, Default: "1", Help: "replicas of the streams and the bucket the binary creates (3 on a cluster)"},
	{Name: "DUPLICATE_WINDOW", For: config.Both, Default: "24h", Help: "how long stream FORMS collapses re-sent rows by Nats-Msg-Id (set where FORMS is created)"},
}

// LoadConfig reads the variables of the layout; problems are left in r.
func LoadConfig(r *config.Reader) Config {
	return Config{Replicas: r.Int("STREAM_REPLICAS", 1), DuplicateWindow: r.Duration("DUPLICATE_WINDOW")}
}

// Config are the operator-tunable parts of the stream layout.
type Config struct {
	Replicas        int           // 1 on one server, 3 on a cluster
	DuplicateWindow time.Duration // how long a Nats-Msg-Id collapses re-sends
}

func (c Config) replicas() int {
	if c.Replicas < 1 {
		return 1
	}
	return c.Replicas
}

// FormsConfig is stream FORMS: every captured row, kept (limits retention) so
// that `ticketer replay` can re-process history.
func FormsConfig(c Config) jetstream.StreamConfig {
	dup := c.DuplicateWindow
	if dup <= 0 {
		dup = 24 * time.Hour
	}
	return jetstream.StreamConfig{
		Name:        Forms,
		Description: "Committed form submissions captured from PostgreSQL (protojson events, Nats-Msg-Id = record hash)",
		Subjects:    []string{FormsSubjects},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Replicas:    c.replicas(),
		Duplicates:  dup,
		Discard:     jetstream.DiscardOld,
		MaxAge:      0, // kept until an operator sets limits: history is the replay source
	}
}

// DLQConfig is stream FORMS_DLQ: dead letters stay until replayed or removed.
func DLQConfig(c Config) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        DLQ,
		Description: "Dead-lettered form events with the reason in headers (see README, operator guide)",
		Subjects:    []string{DLQSubjects},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Replicas:    c.replicas(),
		Duplicates:  10 * time.Minute,
		// Never drop a dead letter silently: refuse new ones when full.
		Discard: jetstream.DiscardNew,
	}
}

// TicketsConfig is KV bucket FORMS_TICKETS: hash → ticket record. History 1,
// no TTL: the record is what keeps a replay from creating a second ticket.
func TicketsConfig(c Config) jetstream.KeyValueConfig {
	return c.bucket(TicketsBucket, "Record hash → Jira issue key (ticketer idempotency record)")
}

// bucket is a file-stored bucket keeping the latest value of each key.
func (c Config) bucket(name, description string) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{Bucket: name, Description: description, Storage: jetstream.FileStorage, Replicas: c.replicas(), History: 1}
}
