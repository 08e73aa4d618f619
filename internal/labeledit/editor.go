// Package labeledit adds a ticket's labels after its create, for JSM
// request types that have no labels field to carry them at creation.
//
// The edit, PUT /issue/{key}, comes after the key is recorded in
// FORMS_TICKETS, so it does not guard the create → record crash window
// (reconciliation finds a request by the record hash in its description,
// which the create itself carries); it serves operators (finding tickets
// by label). It therefore need not hold up the next create: edits wait in
// a bounded in-process queue and go out on the pacer's low-priority lane,
// i.e. only with capacity that no create is waiting for.
//
// Durability: before the record is written, a marker key
// "labels.<hash>" is put in FORMS_TICKETS (the job: Jira key and labels)
// and the record carries labels_pending=true; after the edit succeeded the
// flag is cleared and the marker deleted. On start the service lists the
// markers (a server-side filtered key listing, so its cost is the number of
// pending edits, not the size of the bucket) and queues them again; a
// later event for a hash whose record still says labels_pending queues it
// too. The markers live in the existing bucket, so there is no new stream
// to deploy, and `nats kv ls FORMS_TICKETS` shows what is pending.
//
// A marker written just before a crash that prevented the record write
// still names a ticket that exists: editing it is right.
package labeledit

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sethvargo/go-retry"

	"github.com/cowjacket/formjira/internal/jira"
	"github.com/cowjacket/formjira/internal/pause"
	"github.com/cowjacket/formjira/internal/stream"
)

// Jobs keeps the pending edits durable (stream.Tickets has it).
type Jobs interface {
	PutLabelJob(ctx context.Context, job stream.LabelJob) error
	DeleteLabelJob(ctx context.Context, hash string) error
	LabelJobs(ctx context.Context) (iter.Seq2[stream.LabelJob, error], error)
}

// Records holds the tickets' records, whose labels_pending flag an edit
// clears (stream.Tickets has it; compare-and-set at rev).
type Records interface {
	Get(ctx context.Context, hash string) (*stream.Record, uint64, error)
	Put(ctx context.Context, hash string, rec *stream.Record, rev uint64) (uint64, error)
}

// Jira adds labels to an issue (*jira.Client has it).
type Jira interface {
	AddLabels(ctx context.Context, key string, labels ...string) error
}

// Pacer gates requests to Jira (*jira.Pacer has it): Wait takes a turn as
// a create would, WaitLow only spare capacity.
type Pacer interface {
	Wait(ctx context.Context, op string) error
	WaitLow(ctx context.Context, op string) error
}

// Config wires an Editor; Jobs, Records and Jira are required.
type Config struct {
	Jobs    Jobs
	Records Records
	Jira    Jira
	Pacer   Pacer        // [none: edits are not paced here]
	Log     *slog.Logger // [discard]
	// Pending counts edits queued, in progress or refused by Jira;
	// Failures their failed attempts by class (transient, permanent).
	// [none]
	Pending  prometheus.Gauge
	Failures *prometheus.CounterVec
	// MinBackoff and MaxBackoff shape the retries of transient failures
	// [500ms, 30s].
	MinBackoff, MaxBackoff time.Duration
}

// maxLabelQueue bounds the in-process queue; beyond it the markers alone
// hold the work, and the queue is refilled from them once it runs dry.
const maxLabelQueue = 10000

// Editor makes the edits: at once in one-off commands, from its queue
// once Start was called.
type Editor struct {
	cfg Config

	mu       sync.Mutex
	async    bool // run is draining the queue
	queue    []stream.LabelJob
	known    map[string]bool // hash → queued or being edited
	failed   map[string]bool // hash → refused by Jira, left visible
	overflow bool            // markers exist that are not queued
	wake     chan struct{}
}

// New fills cfg's defaults.
func New(cfg Config) (*Editor, error) {
	if cfg.Jobs == nil || cfg.Records == nil || cfg.Jira == nil {
		return nil, errors.New("labeledit: the editor needs Jobs, Records and Jira")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 500 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	return &Editor{cfg: cfg, known: map[string]bool{}, failed: map[string]bool{}, wake: make(chan struct{}, 1)}, nil
}

// Mark stores the job's marker; called before the record is written.
func (l *Editor) Mark(ctx context.Context, job stream.LabelJob) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	err := l.cfg.Jobs.PutLabelJob(wctx, job)
	cancel()
	if err != nil {
		// Still correct: the record's labels_pending flag brings the edit
		// back when the hash is seen again.
		l.cfg.Log.Warn("could not store the pending label edit", "hash", job.Hash, "jira_key", job.Key, "err", err)
	}
}

// Submit queues the edit when the service drains the queue, or makes it
// now (normal priority, a few attempts) in one-off commands.
func (l *Editor) Submit(ctx context.Context, job stream.LabelJob) {
	l.mu.Lock()
	async := l.async
	l.mu.Unlock()
	if async {
		l.enqueue(job)
		return
	}
	if err := l.edit(context.WithoutCancel(ctx), job, false, 4); err == nil {
		l.done(ctx, job)
	}
}

// enqueue adds job unless it is already queued; false when the queue is
// full (the marker keeps it).
func (l *Editor) enqueue(job stream.LabelJob) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.gaugeLocked()
	if l.known[job.Hash] {
		return true
	}
	if len(l.queue) >= maxLabelQueue {
		l.overflow = true
		return false
	}
	delete(l.failed, job.Hash) // seen again: one more try
	l.known[job.Hash] = true
	l.queue = append(l.queue, job)
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return true
}

func (l *Editor) gaugeLocked() {
	if l.cfg.Pending != nil {
		l.cfg.Pending.Set(float64(len(l.known) + len(l.failed)))
	}
}

// Start switches to queued edits; Run must follow.
func (l *Editor) Start() {
	l.mu.Lock()
	l.async = true
	l.mu.Unlock()
}

// Run drains the queue with workers goroutines until ctx ends, after
// re-queueing the edits left pending by earlier runs.
func (l *Editor) Run(ctx context.Context, workers int) {
	l.Start()
	l.reload(ctx)
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() {
			for {
				job, ok := l.next(ctx)
				if !ok {
					return
				}
				err := l.edit(ctx, job, true, 0)
				l.mu.Lock()
				delete(l.known, job.Hash)
				if err != nil && ctx.Err() == nil {
					l.failed[job.Hash] = true
				}
				l.gaugeLocked()
				l.mu.Unlock()
				if err == nil {
					l.done(ctx, job)
				}
			}
		})
	}
	wg.Wait()
}

// next is the oldest queued job; it refills the queue from the markers
// when it ran dry after an overflow.
func (l *Editor) next(ctx context.Context) (stream.LabelJob, bool) {
	for {
		l.mu.Lock()
		if len(l.queue) > 0 {
			job := l.queue[0]
			l.queue = l.queue[1:]
			if len(l.queue) > 0 {
				select {
				case l.wake <- struct{}{}:
				default:
				}
			}
			l.mu.Unlock()
			return job, true
		}
		reload := l.overflow
		l.overflow = false
		l.mu.Unlock()
		if reload {
			l.reload(ctx)
			continue
		}
		select {
		case <-ctx.Done():
			return stream.LabelJob{}, false
		case <-l.wake:
		}
	}
}

// reload queues the edits whose markers are in FORMS_TICKETS.
func (l *Editor) reload(ctx context.Context) {
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	jobs, err := l.cfg.Jobs.LabelJobs(lctx)
	if err != nil {
		if ctx.Err() == nil {
			l.cfg.Log.Warn("could not list pending label edits; they are retried when their hash is seen again", "err", err)
		}
		return
	}
	n := 0
	for job, err := range jobs {
		if err != nil {
			l.cfg.Log.Warn("ignoring a pending label edit", "err", err)
			continue
		}
		l.mu.Lock()
		skip := l.known[job.Hash]
		l.mu.Unlock()
		if skip {
			continue
		}
		if !l.enqueue(job) {
			break
		}
		n++
	}
	if n > 0 {
		l.cfg.Log.Info("pending label edits queued again", "count", n)
	}
}

// edit adds job's labels in Jira, retrying transient failures with
// exponential backoff and jitter (honouring Retry-After), at most attempts
// times (0: until ctx ends). low takes the pacer's low-priority lane.
func (l *Editor) edit(ctx context.Context, job stream.LabelJob, low bool, attempts int) error {
	b := retry.WithJitterPercent(20, retry.WithCappedDuration(l.cfg.MaxBackoff, retry.NewExponential(l.cfg.MinBackoff)))
	for attempt := 1; ; attempt++ {
		pctx := ctx
		if l.cfg.Pacer != nil {
			wait := l.cfg.Pacer.Wait
			if low {
				wait = l.cfg.Pacer.WaitLow
			}
			if err := wait(ctx, jira.OpAddLabels); err != nil {
				return err
			}
			pctx = jira.Paced(ctx)
		}
		err := l.cfg.Jira.AddLabels(pctx, job.Key, job.Labels...)
		if err == nil {
			if attempt > 1 {
				l.cfg.Log.Info("labels added", "hash", job.Hash, "jira_key", job.Key, "attempt", attempt)
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !errors.Is(err, jira.ErrRetryable) && !errors.Is(err, jira.ErrAuth) {
			// The record holds the key, so idempotency holds; only a search
			// by label (operators, reconciliation after a lost record) misses
			// the ticket. The marker stays: visible, and tried again on the
			// next start or when the hash comes again.
			l.failure("permanent")
			l.cfg.Log.Error("Jira refuses to add the ticket's labels; left pending", "hash", job.Hash, "jira_key", job.Key,
				"labels", strings.Join(job.Labels, " "), "attempt", attempt, "err", err)
			return err
		}
		l.failure("transient")
		if attempts > 0 && attempt >= attempts {
			l.cfg.Log.Warn("could not add the ticket's labels; left pending", "hash", job.Hash, "jira_key", job.Key, "attempt", attempt, "err", err)
			return err
		}
		d, _ := b.Next()
		d = max(d, jira.RetryAfter(err))
		l.cfg.Log.Warn("adding the ticket's labels failed; retrying", "hash", job.Hash, "jira_key", job.Key, "attempt", attempt,
			"retry_in", d.String(), "err", err)
		if !pause.For(ctx, d) {
			return ctx.Err()
		}
	}
}

// done clears the record's labels_pending flag and deletes the marker.
// Failing here only repeats an idempotent edit later.
func (l *Editor) done(ctx context.Context, job stream.LabelJob) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	var err error
	for range 3 {
		var r *stream.Record
		var rev uint64
		if r, rev, err = l.cfg.Records.Get(wctx, job.Hash); err != nil || r == nil || r.State != stream.StateCreated || r.Key != job.Key || !r.LabelsPending {
			break // nothing to clear (or not ours to clear)
		}
		r.LabelsPending = false
		if _, err = l.cfg.Records.Put(wctx, job.Hash, r, rev); !errors.Is(err, stream.ErrConflict) {
			break
		}
	}
	if err == nil {
		err = l.cfg.Jobs.DeleteLabelJob(wctx, job.Hash)
	}
	if err != nil {
		l.cfg.Log.Warn("labels added but still marked pending; the edit will be repeated", "hash", job.Hash, "jira_key", job.Key,
			"err", fmt.Sprint(err))
	}
}

func (l *Editor) failure(class string) {
	if l.cfg.Failures != nil {
		l.cfg.Failures.WithLabelValues(class).Inc()
	}
}
