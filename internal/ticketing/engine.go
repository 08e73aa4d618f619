// Package ticketing is the exactly-once engine: it turns form events into
// Jira tickets, one per record hash, whatever fails and however often an
// event comes. For each event it claims the hash in the ticket records,
// creates the ticket (in bulk where it can), records the key, and
// reconciles with Jira when an earlier attempt's outcome is unknown; what
// Jira refuses or what cannot be mapped is dead-lettered with the reason.
// The consumer (internal/ticketer), `dlq replay` and `replay` all go
// through Engine.Process.
//
// It depends on small interfaces (Jira, Records, Publisher, Pacer;
// labeledit.Jobs), so its paths are tested without a server.
package ticketing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/jira"
	"github.com/cowjacket/formjira/internal/labeledit"
	"github.com/cowjacket/formjira/internal/mapping"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/ticket"
)

// Jira is what the engine needs from Jira (*jira.Client has it).
type Jira interface {
	Meta(ctx context.Context, t ticket.Target) (*ticket.Meta, error)
	Create(ctx context.Context, req *ticket.Request) (string, error)
	BulkCreate(ctx context.Context, reqs []*ticket.Request) ([]jira.Result, error)
	FindByLabels(ctx context.Context, labels []string) (map[string][]string, error)
	FindByText(ctx context.Context, project string, words []string) (map[string][]string, error)
	AddLabels(ctx context.Context, key string, labels ...string) error
	// IssuesByKey and LatestKey are direct reads: no search lag.
	IssuesByKey(ctx context.Context, keys []string) ([]jira.Issue, error)
	LatestKey(ctx context.Context, project string) (string, error)
}

// Records is the idempotency record store, with compare-and-set writes
// (stream.Tickets has it): Put at rev 0 creates, otherwise updates at rev;
// stream.ErrConflict when the record moved.
type Records interface {
	Get(ctx context.Context, hash string) (*stream.Record, uint64, error)
	Put(ctx context.Context, hash string, rec *stream.Record, rev uint64) (uint64, error)
	Delete(ctx context.Context, hash string, rev uint64) error
}

// Publisher publishes dead letters (jetstream.JetStream has it).
type Publisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// Pacer gates requests to Jira, per operation (*jira.Pacer has it). Wait
// takes a turn for a create; WaitLow only spare capacity, for deferred
// label edits.
type Pacer interface {
	Wait(ctx context.Context, op string) error
	WaitLow(ctx context.Context, op string) error
	// Answered: a turn taken by Wait ended without a request.
	Answered(op string)
}

// Config wires an Engine. Every field without a default in brackets is
// required: the binary's configuration holds the defaults.
// Health is the site's view of whether Jira works (jirasite.Site).
type Health interface {
	AnsweredSince(t time.Time) bool
}

type Config struct {
	Jira        Jira
	Mapping     *mapping.Mapping
	Records     Records
	LabelJobs   labeledit.Jobs
	DeadLetters Publisher
	Requesters  Requesters   // [none: requests go without an account]
	Log         *slog.Logger // [discard]
	Metrics     *Metrics     // [none]
	// Pacer, when the Jira client paces with it, lets the engine take the
	// request's turn before stamping the claim, so the claim's
	// RecheckAfter is measured from the moment the create is really sent.
	// [none]
	Pacer Pacer
	// Health, when set, tells whether Jira answered other calls after an
	// event's failures began: a failure as an outage would fail (no answer,
	// 5xx) counts only then, since the circuit opens only after several
	// such failures. [none: every such failure counts]
	Health Health

	// BatchSize bounds a bulk create (platform, at most jira.MaxBulk);
	// Concurrency bounds JSM creates in flight within one Process call.
	BatchSize, Concurrency int
	// ReconcileDelay is how long Jira's search may lag behind a create.
	ReconcileDelay time.Duration
	// JiraTimeout bounds one Jira request; with ReconcileDelay it decides
	// when an unknown attempt's empty search can be trusted.
	JiraTimeout time.Duration
	// RetryWindow bounds retrying within one Process call; what is still
	// failing then is left for redelivery, and counted as a failure of the
	// event when Jira otherwise worked.
	RetryWindow time.Duration
	// MaxFailures is how many such failed deliveries dead-letter an event
	// as exhausted (MAX_DELIVER).
	MaxFailures int
	// MinBackoff and MaxBackoff shape the exponential backoff with jitter
	// [200ms, 10s].
	MinBackoff, MaxBackoff time.Duration
	// KeepAliveEvery is how often KeepAlive runs [5s].
	KeepAliveEvery time.Duration
}

// Engine turns events into tickets, exactly once per hash: claim in the
// records, create in Jira, record the key; classify and dead-letter
// failures.
type Engine struct {
	cfg     Config
	log     *slog.Logger
	metrics *Metrics
	labels  *labeledit.Editor

	// floor is the highest issue number seen (creates, reads, searches);
	// floorKnown once it was fetched or seen.
	floor      atomic.Int64
	floorKnown atomic.Bool

	metaMu  sync.Mutex
	meta    *ticket.Meta
	metaAt  time.Time
	metaOld bool
}

// New checks cfg and fills the defaults of the tuning fields.
func New(cfg Config) (*Engine, error) {
	switch {
	case cfg.Jira == nil || cfg.Mapping == nil || cfg.Records == nil || cfg.LabelJobs == nil || cfg.DeadLetters == nil:
		return nil, errors.New("ticketing: the engine needs Jira, Mapping, Records, LabelJobs and DeadLetters")
	case cfg.BatchSize < 1 || cfg.BatchSize > jira.MaxBulk:
		return nil, fmt.Errorf("ticketing: batch size %d, want 1..%d", cfg.BatchSize, jira.MaxBulk)
	case cfg.Concurrency < 1:
		return nil, fmt.Errorf("ticketing: concurrency %d, want at least 1", cfg.Concurrency)
	case cfg.ReconcileDelay <= 0 || cfg.JiraTimeout <= 0 || cfg.RetryWindow <= 0 || cfg.MaxFailures < 1:
		return nil, errors.New("ticketing: ReconcileDelay, JiraTimeout, RetryWindow and MaxFailures must be positive")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 200 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 10 * time.Second
	}
	if cfg.KeepAliveEvery <= 0 {
		cfg.KeepAliveEvery = 5 * time.Second
	}
	labels, err := labeledit.New(labeledit.Config{Jobs: cfg.LabelJobs, Records: cfg.Records, Jira: cfg.Jira, Pacer: cfg.Pacer,
		Log: cfg.Log, Pending: cfg.Metrics.labelsPending(), Failures: cfg.Metrics.labelEditFailures(),
		// Edits are low priority: they back off longer than creates.
		MinBackoff: max(cfg.MinBackoff, 500*time.Millisecond), MaxBackoff: max(cfg.MaxBackoff, 30*time.Second)})
	if err != nil {
		return nil, err
	}
	return &Engine{cfg: cfg, log: cfg.Log, metrics: cfg.Metrics, labels: labels}, nil
}

// Refused reports whether Jira refuses us rather than an event: the
// credentials (401, or served as anonymous) or a permission every create
// needs (403). Nothing will succeed until an operator fixes it, so the
// service stops consuming.
func Refused(err error) bool {
	return errors.Is(err, jira.ErrAuth) || errors.Is(err, jira.ErrPermission)
}
