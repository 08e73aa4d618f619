package ticketer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sethvargo/go-retry"
	"golang.org/x/sync/errgroup"

	"github.com/cowjacket/formjira/internal/jira"
	"github.com/cowjacket/formjira/internal/mapping"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/ticket"
	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

// Jira is what the processor needs from Jira (*jira.Client has it).
type Jira interface {
	Meta(ctx context.Context, t ticket.Target) (*ticket.Meta, error)
	Create(ctx context.Context, req *ticket.Request) (string, error)
	BulkCreate(ctx context.Context, reqs []*ticket.Request) ([]jira.Result, error)
	FindByLabels(ctx context.Context, labels []string) (map[string][]string, error)
	FindByText(ctx context.Context, project string, words []string) (map[string][]string, error)
	AddLabels(ctx context.Context, key string, labels ...string) error
}

// Item is one event to turn into a ticket: a message of FORMS, or a dead
// letter being replayed.
type Item struct {
	Data    []byte // the event as stored (protojson)
	Subject string // original subject
	Stream  string // original stream, normally FORMS
	Seq     uint64 // original stream sequence
	// Delivery is the 1-based delivery count; Final says no redelivery
	// follows, so a transient failure dead-letters (ReasonExhausted).
	Delivery int
	Final    bool
	// Force creates a ticket even when one is recorded (replay --force).
	Force bool
	// NoDeadLetter reports permanent failures (StatusRejected) instead of
	// publishing them to FORMS_DLQ, for re-driving dead letters.
	NoDeadLetter bool
	// KeepAlive, if set, is called periodically while the item waits
	// (msg.InProgress), so a long retry does not trigger redelivery.
	KeepAlive func()
}

// Status is an item's outcome.
type Status int

const (
	StatusRetry        Status = iota // transient failure: leave for redelivery (Nak with RetryIn)
	StatusCreated                    // a ticket was created (Key)
	StatusSkipped                    // a ticket already existed (Key; "" for an in-batch duplicate)
	StatusDeadLettered               // published to FORMS_DLQ (DLQSeq): terminate the original
	StatusRejected                   // permanent failure, not published (Item.NoDeadLetter)
	StatusAuth                       // Jira refused the credentials: stop consuming
)

func (s Status) String() string {
	return [...]string{"retry", "created", "skipped", "dead_lettered", "rejected", "auth_failed"}[s]
}

// Outcome is what became of an item.
type Outcome struct {
	Status     Status
	Key        string
	Err        error
	RetryIn    time.Duration      // StatusRetry: when to try again
	DeadLetter *stream.DeadLetter // StatusDeadLettered / StatusRejected
	DLQSeq     uint64
}

// ProcessorConfig wires a Processor.
type ProcessorConfig struct {
	Jira    Jira
	Mapping *mapping.Mapping
	JS      jetstream.JetStream // dead-letter publishing
	KV      jetstream.KeyValue  // FORMS_TICKETS
	Log     *slog.Logger
	Metrics *Metrics
	// Pacer, when the Jira client paces with it, lets the processor take
	// the request's turn before stamping the claim, so the claim's
	// RecheckAfter is measured from the moment the create is really sent.
	Pacer *jira.Pacer

	// BatchSize bounds a bulk create (platform); Concurrency bounds JSM
	// creates in flight within one Process call.
	BatchSize, Concurrency int
	// ReconcileDelay is how long Jira's search may lag behind a create.
	ReconcileDelay time.Duration
	// JiraTimeout bounds one Jira request; with ReconcileDelay it decides
	// when an unknown attempt's empty search can be trusted.
	JiraTimeout time.Duration
	// RetryWindow bounds retrying within one Process call; what is still
	// failing then is left for redelivery (or dead-lettered when Final).
	RetryWindow time.Duration
	// MinBackoff and MaxBackoff shape the exponential backoff with jitter.
	MinBackoff, MaxBackoff time.Duration
	// KeepAliveEvery is how often KeepAlive runs (default 5s).
	KeepAliveEvery time.Duration
}

// Processor turns events into tickets, exactly once per hash: claim in
// FORMS_TICKETS, create in Jira, record the key; classify and dead-letter
// failures. The consumer, `dlq replay` and `replay` all go through Process.
type Processor struct {
	cfg    ProcessorConfig
	rec    Records
	log    *slog.Logger
	labels *labeler

	metaMu  sync.Mutex
	meta    *ticket.Meta
	metaAt  time.Time
	metaOld bool
}

// NewProcessor checks cfg and fills defaults.
func NewProcessor(cfg ProcessorConfig) (*Processor, error) {
	if cfg.Jira == nil || cfg.Mapping == nil || cfg.JS == nil || cfg.KV == nil {
		return nil, errors.New("ticketer: processor needs Jira, Mapping, JS and KV")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.BatchSize <= 0 || cfg.BatchSize > jira.MaxBulk {
		cfg.BatchSize = jira.MaxBulk
	}
	cfg.Concurrency = max(cfg.Concurrency, 1)
	if cfg.ReconcileDelay <= 0 {
		cfg.ReconcileDelay = 30 * time.Second
	}
	if cfg.JiraTimeout <= 0 {
		cfg.JiraTimeout = 30 * time.Second
	}
	if cfg.RetryWindow <= 0 {
		cfg.RetryWindow = time.Minute
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
	return &Processor{cfg: cfg, rec: Records{KV: cfg.KV}, log: cfg.Log, labels: newLabeler(cfg)}, nil
}

// work is one item's state across the passes of a Process call.
type work struct {
	it     Item
	ev     *formsv1.FormSubmission
	hash   string
	req    *ticket.Request
	rev    uint64  // revision of our own claim, 0 = none
	rec    *Record // last record seen
	recRev uint64
	// notCreated: our last create attempt provably created nothing, so the
	// next one needs no reconciliation.
	notCreated bool
	sent       bool // we sent a create in this call
	forced     bool
	attempts   int
	firstFail  time.Time
	lastFail   time.Time
	lastErr    error
	wait       time.Time // retry not before
	reconcile  bool
	out        *Outcome
}

// softStopKey carries a channel: once closed, Process stops retrying (but
// finishes the request in flight), used for graceful shutdown.
type softStopKey struct{}

// WithSoftStop makes Process stop retrying once stop is closed, while ctx
// still governs requests in flight.
func WithSoftStop(ctx context.Context, stop <-chan struct{}) context.Context {
	return context.WithValue(ctx, softStopKey{}, stop)
}

func softStop(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(softStopKey{}).(<-chan struct{})
	return ch
}

// Process handles items end to end and returns one Outcome per item, in
// order. It retries transient failures with exponential backoff and jitter
// within RetryWindow, honouring Retry-After; it never returns an error: the
// outcomes say what to do with each message.
func (p *Processor) Process(ctx context.Context, items []Item) []Outcome {
	ws := make([]*work, len(items))
	byHash := map[string]*work{}
	for i, it := range items {
		w := &work{it: it}
		ws[i] = w
		ev, err := stream.Unmarshal(it.Data)
		if err != nil {
			p.deadLetter(ctx, w, stream.ReasonUndecodable, err, nil)
			continue
		}
		w.ev, w.hash = ev, ev.GetHash()
		if w.hash == "" {
			p.deadLetter(ctx, w, stream.ReasonUnmappable, errors.New("event has no record hash"), nil)
			continue
		}
		if first := byHash[w.hash]; first != nil {
			// The same request twice in one batch: one ticket, by the first.
			w.out = &Outcome{Status: StatusSkipped}
			continue
		}
		byHash[w.hash] = w
	}

	stopKeepAlive := p.keepAlive(ws)
	defer stopKeepAlive()

	start := time.Now()
	b := retry.WithJitterPercent(20, retry.WithCappedDuration(p.cfg.MaxBackoff, retry.NewExponential(p.cfg.MinBackoff)))
	for pass := 0; ; pass++ {
		if auth := p.pass(ctx, ws); auth != nil {
			for _, w := range ws {
				if w.out != nil {
					continue
				}
				if w.it.Final {
					// No redelivery follows a Nak of the last delivery: the
					// event would stay in FORMS unflagged. Dead-letter it so an
					// operator replays it once the credentials are fixed.
					p.freeClaim(ctx, w)
					p.deadLetter(ctx, w, stream.ReasonExhausted, fmt.Errorf(
						"Jira refused the credentials during the last delivery (%d); fix JIRA_EMAIL/JIRA_API_TOKEN or JIRA_PAT, then `ticketer dlq replay`: %w",
						w.it.Delivery, auth), nil)
					if w.out != nil {
						continue
					}
				}
				w.out = &Outcome{Status: StatusAuth, Err: auth}
				p.cfg.Metrics.failed("auth")
			}
			break
		}
		pending := pendingOf(ws)
		if len(pending) == 0 {
			break
		}
		// Wait for the latest of: the backoff step, the earliest item's
		// not-before (Retry-After, a young claim's recheck time).
		d, _ := b.Next()
		earliest := time.Time{}
		for _, w := range pending {
			if earliest.IsZero() || w.wait.Before(earliest) {
				earliest = w.wait
			}
		}
		d = max(d, time.Until(earliest))
		if time.Since(start)+d > p.cfg.RetryWindow || !sleep(ctx, d) {
			p.giveUp(ctx, pending, d)
			break
		}
		for _, w := range pending {
			if w.attempts > 0 {
				p.cfg.Metrics.retry()
			}
		}
	}
	out := make([]Outcome, len(ws))
	for i, w := range ws {
		if w.out == nil { // cannot happen; never lose an event silently
			w.out = &Outcome{Status: StatusRetry, Err: errors.New("unprocessed")}
		}
		if w.out.Status == StatusSkipped && w.out.Key == "" && w.hash != "" {
			if first := byHash[w.hash]; first != w && first.out != nil {
				w.out.Key = first.out.Key
			}
		}
		out[i] = *w.out
	}
	return out
}

func pendingOf(ws []*work) []*work {
	var out []*work
	for _, w := range ws {
		if w.out == nil {
			out = append(out, w)
		}
	}
	return out
}

// sleep waits d; false if ctx ended or a soft stop came first.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-softStop(ctx):
		return false
	}
}

// keepAlive tells the server every item is still being worked on: at once
// (a message may have waited in the pull buffer) and then periodically. The
// items are settled only after Process returns, so all of them qualify.
func (p *Processor) keepAlive(ws []*work) func() {
	var fns []func()
	for _, w := range ws {
		if w.it.KeepAlive != nil {
			fns = append(fns, w.it.KeepAlive)
		}
	}
	if len(fns) == 0 {
		return func() {}
	}
	touch := func() {
		for _, f := range fns {
			f()
		}
	}
	touch()
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(p.cfg.KeepAliveEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				touch()
			}
		}
	}()
	return func() { close(done) }
}

// giveUp ends the call for items still failing: redelivery later, or the
// dead-letter stream when this was the last delivery, also when shutdown
// cut it short (a Nak of the last delivery is never redelivered).
func (p *Processor) giveUp(ctx context.Context, pending []*work, next time.Duration) {
	stopping := ctx.Err() != nil
	select {
	case <-softStop(ctx):
		stopping = true
	default:
	}
	dctx := ctx
	if ctx.Err() != nil {
		// The dead-letter publish outlives a cancelled ctx, briefly.
		var cancel context.CancelFunc
		dctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
	}
	for _, w := range pending {
		err := w.lastErr
		if err == nil {
			err = errors.New("ticket outcome still unknown (waiting for Jira's search to catch up)")
		}
		if w.it.Final {
			cause := fmt.Errorf("gave up after %d deliveries: %w", w.it.Delivery, err)
			if stopping {
				cause = fmt.Errorf("shutdown during the last delivery (%d), still failing: %w", w.it.Delivery, err)
			}
			p.deadLetter(dctx, w, stream.ReasonExhausted, cause, nil)
			if w.out != nil {
				continue
			}
		}
		w.out = &Outcome{Status: StatusRetry, Err: err, RetryIn: max(next, time.Until(w.wait))}
		p.cfg.Metrics.failed("transient")
	}
}

// freeClaim deletes w's own claim when its last attempt provably created
// nothing, so a later replay need not wait to reconcile it.
func (p *Processor) freeClaim(ctx context.Context, w *work) {
	if w.rev == 0 || !w.notCreated {
		return
	}
	if err := p.rec.Delete(context.WithoutCancel(ctx), w.hash, w.rev); err != nil {
		p.log.Warn("could not free the claim of a dead-lettered event", "hash", w.hash, "err", err)
	}
	w.rev = 0
}

// pass makes one attempt at every unresolved item. It returns an auth
// error when Jira refused the credentials.
func (p *Processor) pass(ctx context.Context, ws []*work) error {
	now := time.Now()
	var ready []*work
	for _, w := range ws {
		if w.out == nil && !w.wait.After(now) {
			ready = append(ready, w)
		}
	}
	if len(ready) == 0 {
		return nil
	}
	meta, err := p.Meta(ctx)
	if err != nil {
		return p.failAll(ready, err)
	}
	// 1. Map, then claim (or find the claim's state).
	var own, rec []*work
	for _, w := range ready {
		if w.req == nil && !p.build(ctx, w, meta) {
			continue
		}
		switch err := p.claim(ctx, w); {
		case err != nil:
			p.transient(w, err, 0)
		case w.out != nil:
		case w.reconcile:
			rec = append(rec, w)
		case w.rev != 0:
			own = append(own, w)
		}
	}
	// 2. Reconcile unknown outcomes by searching for the hash.
	if len(rec) > 0 {
		if err := p.reconcile(ctx, rec); err != nil {
			if errors.Is(err, jira.ErrAuth) {
				return err
			}
			for _, w := range rec {
				p.transient(w, err, jira.RetryAfter(err))
			}
		}
		for _, w := range rec {
			if w.out == nil && w.rev != 0 && !w.reconcile {
				own = append(own, w)
			}
		}
	}
	// 3. Create what we own.
	if len(own) == 0 {
		return nil
	}
	return p.create(ctx, own, meta)
}

func (p *Processor) failAll(ws []*work, err error) error {
	if errors.Is(err, jira.ErrAuth) {
		return err
	}
	for _, w := range ws {
		p.transient(w, err, jira.RetryAfter(err))
	}
	return nil
}

// build maps the event; false when it was dead-lettered (or must wait).
func (p *Processor) build(ctx context.Context, w *work, meta *ticket.Meta) bool {
	req, err := p.cfg.Mapping.Build(w.ev, meta)
	if err != nil && errors.Is(err, mapping.ErrUnmappable) && p.metaAge() > time.Minute {
		// An option may have been added in Jira since: look again once.
		p.invalidateMeta()
		if fresh, merr := p.Meta(ctx); merr == nil {
			req, err = p.cfg.Mapping.Build(w.ev, fresh)
		}
	}
	if err != nil {
		var fes []string
		for _, fe := range mapping.Problems(err) {
			fes = append(fes, fe.Error())
		}
		p.deadLetter(ctx, w, stream.ReasonUnmappable, err, fes)
		return false
	}
	w.req = req
	return true
}

// claim makes w the owner of its hash (w.rev) or finds why it is not:
// already created (w.out), or claimed with an unknown outcome (w.reconcile).
func (p *Processor) claim(ctx context.Context, w *work) error {
	now := time.Now()
	w.reconcile = false
	if w.rev != 0 && w.notCreated {
		// Our own claim and our last attempt did nothing: refresh and go.
		rev, err := p.rec.Put(ctx, w.hash, p.claimRecord(w, now), w.rev)
		if err == nil {
			w.rev = rev
			return nil
		}
		if !errors.Is(err, errConflict) {
			return err
		}
		w.rev = 0 // someone took the claim over: look again
	}
	for range 3 {
		r, rev, err := p.rec.Get(ctx, w.hash)
		if err != nil {
			return err
		}
		w.rec, w.recRev = r, rev
		if r != nil && !r.FirstFailure.IsZero() && (w.firstFail.IsZero() || r.FirstFailure.Before(w.firstFail)) {
			w.firstFail = r.FirstFailure
		}
		switch {
		case r == nil:
			n, err := p.rec.Put(ctx, w.hash, p.claimRecord(w, now), 0)
			if errors.Is(err, errConflict) {
				continue
			}
			if err != nil {
				return err
			}
			w.rev = n
			return nil
		case r.State == StateCreated && w.it.Force && !w.forced:
			n, err := p.rec.Put(ctx, w.hash, p.claimRecord(w, now), rev)
			if errors.Is(err, errConflict) {
				continue
			}
			if err != nil {
				return err
			}
			w.rev, w.forced = n, true
			p.log.Warn("forced re-creation of a recorded ticket", "hash", w.hash, "jira_key", r.Key, "stream_seq", w.it.Seq)
			return nil
		case r.State == StateCreated:
			if r.LabelsPending && w.req != nil && w.req.LabelsPending && r.Key != "" {
				// A crash or a refusal left the labels out: try again.
				p.labels.submit(ctx, labelJob{Hash: w.hash, Key: r.Key, Labels: w.req.Labels, Since: time.Now()})
			}
			w.out = &Outcome{Status: StatusSkipped, Key: r.Key}
			if w.sent {
				w.out.Status = StatusCreated
			}
			p.count(w.out)
			return nil
		default:
			w.reconcile = true
			return nil
		}
	}
	return errors.New("ticket record keeps changing under us")
}

func (p *Processor) claimRecord(w *work, now time.Time) *Record {
	attempt := 1
	if w.rec != nil {
		attempt = w.rec.Attempt + 1
	}
	r := &Record{
		State:        StateClaimed,
		ClaimedAt:    now,
		RecheckAfter: now.Add(p.cfg.JiraTimeout + p.cfg.ReconcileDelay),
		Attempt:      attempt,
		StreamSeq:    w.it.Seq,
		FirstFailure: w.firstFail,
	}
	w.rec = r
	return r
}

// reconcile searches Jira for the tickets of claims whose outcome is
// unknown, by what the create itself carried: the hash label, or, for a
// JSM request whose labels follow in a later edit (LabelsPending), the
// record hash in its description. Found: the ticket exists, record it. Not
// found: trust it only once the claim's RecheckAfter has passed, then take
// the claim over.
func (p *Processor) reconcile(ctx context.Context, ws []*work) error {
	var labels, hashes []string
	for _, w := range ws {
		if w.req.LabelsPending {
			hashes = append(hashes, w.hash)
		} else {
			labels = append(labels, w.req.HashLabel)
		}
	}
	byLabel, byText := map[string][]string{}, map[string][]string{}
	var err error
	if len(labels) > 0 {
		if byLabel, err = p.cfg.Jira.FindByLabels(ctx, labels); err != nil {
			return err
		}
	}
	if len(hashes) > 0 {
		if byText, err = p.cfg.Jira.FindByText(ctx, p.cfg.Mapping.Project(), hashes); err != nil {
			return err
		}
	}
	now := time.Now()
	for _, w := range ws {
		keys := byLabel[w.req.HashLabel]
		if w.req.LabelsPending {
			keys = byText[w.hash]
		}
		if len(keys) > 0 {
			if len(keys) > 1 {
				p.log.Error("more than one ticket carries the record hash", "hash", w.hash, "jira_keys", keys)
			}
			p.recordCreated(ctx, w, keys[0], w.recRev, false)
			w.reconcile = false
			continue
		}
		if now.Before(w.rec.RecheckAfter) {
			// Jira's search may not show a recent create yet: look again later.
			w.wait = w.rec.RecheckAfter
			p.log.Debug("claim too young to trust an empty search", "hash", w.hash, "stream_seq", w.it.Seq, "recheck_after", w.rec.RecheckAfter)
			continue
		}
		rev, err := p.rec.Put(ctx, w.hash, p.claimRecord(w, now), w.recRev)
		if err != nil {
			if !errors.Is(err, errConflict) {
				p.transient(w, err, 0)
			}
			continue // conflict: look again on the next pass
		}
		p.log.Info("taking over a claim whose attempt created nothing", "hash", w.hash, "stream_seq", w.it.Seq, "attempt", w.rec.Attempt)
		w.rev, w.reconcile = rev, false
	}
	return nil
}

// recordCreated writes the key for w (at rev) and resolves it.
// labelsPending marks the record until the deferred label edit is done.
func (p *Processor) recordCreated(ctx context.Context, w *work, key string, rev uint64, labelsPending bool) {
	now := time.Now()
	r := &Record{State: StateCreated, Key: key, ClaimedAt: now, Attempt: 1, StreamSeq: w.it.Seq, CreatedAt: now,
		LabelsPending: labelsPending}
	if ct := w.ev.GetSource().GetCommitTime(); ct.IsValid() && ct.AsTime().Unix() > 0 {
		r.CommitTime = ct.AsTime()
	}
	if w.rec != nil {
		r.ClaimedAt, r.FirstFailure, r.Attempt = w.rec.ClaimedAt, w.rec.FirstFailure, max(w.rec.Attempt, 1)
	}
	// The ticket exists whatever happens next: keep trying to record it,
	// even past a shutdown, because an unrecorded key costs a search later.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var err error
	for attempt := range 5 {
		if _, err = p.rec.Put(wctx, w.hash, r, rev); err == nil || errors.Is(err, errConflict) {
			break
		}
		if !sleep(wctx, time.Duration(attempt+1)*100*time.Millisecond) {
			break
		}
	}
	status := StatusSkipped
	if w.sent {
		status = StatusCreated
	}
	w.out = &Outcome{Status: status, Key: key}
	switch {
	case errors.Is(err, errConflict):
		// Another worker recorded or took the claim meanwhile.
		cur, _, gerr := p.rec.Get(wctx, w.hash)
		if gerr == nil && cur != nil && cur.State == StateCreated && cur.Key != key {
			p.log.Error("two tickets for one request", "hash", w.hash, "jira_key", key, "recorded_key", cur.Key)
		}
	case err != nil:
		// Not recorded: the search still finds it, so no second ticket.
		p.log.Warn("ticket created but not recorded; the next delivery finds it by its hash", "hash", w.hash, "jira_key", key, "err", err)
	}
	p.count(w.out)
	p.log.Debug("ticket recorded", "hash", w.hash, "jira_key", key, "stream_seq", w.it.Seq, "status", status.String())
}

func (p *Processor) count(o *Outcome) {
	switch o.Status {
	case StatusCreated:
		p.cfg.Metrics.created()
	case StatusSkipped:
		p.cfg.Metrics.skipped()
	}
}

// create sends the owned items to Jira: bulk in platform mode, one request
// each (concurrently) in JSM mode.
func (p *Processor) create(ctx context.Context, own []*work, meta *ticket.Meta) error {
	type res struct {
		w   *work
		key string
		err error
	}
	var results []res
	if p.cfg.Mapping.Mode() == mapping.ModeJSM {
		results = make([]res, len(own))
		g := errgroup.Group{}
		g.SetLimit(p.cfg.Concurrency)
		for i, w := range own {
			g.Go(func() error {
				pctx, err := p.takeTurn(ctx)
				if err != nil {
					results[i] = res{w, "", err}
					return nil
				}
				if !p.stamp(ctx, w) {
					return nil
				}
				w.sent = true
				key, err := p.cfg.Jira.Create(pctx, w.req)
				results[i] = res{w, key, err}
				return nil
			})
		}
		_ = g.Wait()
		results = slices.DeleteFunc(results, func(r res) bool { return r.w == nil })
	} else {
		for chunk := range slices.Chunk(own, p.cfg.BatchSize) {
			pctx, err := p.takeTurn(ctx)
			if err != nil {
				for _, w := range chunk {
					results = append(results, res{w, "", err})
				}
				continue
			}
			var reqs []*ticket.Request
			var sent []*work
			for _, w := range chunk {
				if p.stamp(ctx, w) {
					reqs, w.sent = append(reqs, w.req), true
					sent = append(sent, w)
				}
			}
			if len(reqs) == 0 {
				continue
			}
			rs, _ := p.cfg.Jira.BulkCreate(pctx, reqs)
			for i, w := range sent {
				results = append(results, res{w, rs[i].Key, rs[i].Err})
			}
		}
	}
	var authErr error
	for _, r := range results {
		w := r.w
		if r.err == nil {
			rev := w.rev
			w.rev = 0
			if !w.req.LabelsPending {
				p.recordCreated(ctx, w, r.key, rev, false)
				continue
			}
			// JSM without a labels field: the labels follow in an edit,
			// deferred to spare capacity (labels.go). The marker goes first,
			// so even a crash before the record leaves the key known.
			job := labelJob{Hash: w.hash, Key: r.key, Labels: w.req.Labels, Since: time.Now()}
			p.labels.mark(ctx, &job)
			p.recordCreated(ctx, w, r.key, rev, true)
			p.labels.submit(ctx, job)
			continue
		}
		switch {
		case errors.Is(r.err, jira.ErrAuth):
			w.notCreated = true
			authErr = r.err
		case errors.Is(r.err, jira.ErrPermanent):
			// Jira refused this one: nothing was created. Free the claim so a
			// replay after the fix starts clean, then dead-letter it.
			if err := p.rec.Delete(context.WithoutCancel(ctx), w.hash, w.rev); err != nil {
				p.log.Warn("could not free the claim of a rejected event", "hash", w.hash, "err", err)
			}
			w.rev = 0
			p.invalidateMeta()
			p.deadLetter(ctx, w, stream.ReasonJiraRejected, r.err, fieldErrors(r.err, meta))
		case jira.MaybeCreated(r.err):
			// Outcome unknown: never create again before a search, after
			// Jira's index had time to show it.
			w.notCreated = false
			recheck := time.Now().Add(p.cfg.ReconcileDelay)
			nr := *w.rec
			nr.RecheckAfter, nr.FirstFailure = recheck, cmpFirst(w.firstFail, time.Now())
			if rev, err := p.rec.Put(context.WithoutCancel(ctx), w.hash, &nr, w.rev); err == nil {
				w.rev, w.rec = rev, &nr
			}
			p.transient(w, r.err, p.cfg.ReconcileDelay)
		default:
			w.notCreated = true
			p.transient(w, r.err, jira.RetryAfter(r.err))
		}
	}
	return authErr
}

// takeTurn waits for the shared pacer (and any Retry-After) so that the
// claim stamped next is followed by the request at once.
func (p *Processor) takeTurn(ctx context.Context) (context.Context, error) {
	if p.cfg.Pacer == nil {
		return ctx, nil
	}
	if err := p.cfg.Pacer.Wait(ctx); err != nil {
		return nil, err
	}
	return jira.Paced(ctx), nil
}

// stamp re-writes our claim just before the create is sent: it fences off
// a worker that took the claim over meanwhile (revision check) and starts
// RecheckAfter from now. false: the claim is no longer ours.
func (p *Processor) stamp(ctx context.Context, w *work) bool {
	rev, err := p.rec.Put(ctx, w.hash, p.claimRecord(w, time.Now()), w.rev)
	if err != nil {
		w.rev = 0
		if !errors.Is(err, errConflict) {
			p.transient(w, err, 0)
		}
		return false
	}
	w.rev = rev
	return true
}

func cmpFirst(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// transient records a retryable failure of w; notBefore delays its retry.
func (p *Processor) transient(w *work, err error, notBefore time.Duration) {
	now := time.Now()
	w.attempts++
	w.lastErr = err
	w.lastFail = now
	w.firstFail = cmpFirst(w.firstFail, now)
	w.wait = now.Add(notBefore)
	p.log.Warn("transient failure", "hash", w.hash, "stream_seq", w.it.Seq, "attempt", w.attempts, "delivery", w.it.Delivery, "err", err)
}

// fieldErrors names each field Jira refused by id and name.
func fieldErrors(err error, meta *ticket.Meta) []string {
	var ae *jira.APIError
	if !errors.As(err, &ae) {
		return nil
	}
	var out []string
	for _, id := range slices.Sorted(maps.Keys(ae.FieldErrors)) {
		name := id
		if meta != nil {
			if fm, ok := meta.Fields[id]; ok && fm.Name != "" {
				name = fm.Name
			}
		}
		out = append(out, fmt.Sprintf("%s (%s): %s", id, name, ae.FieldErrors[id]))
	}
	return out
}

// deadLetter publishes w to FORMS_DLQ and resolves it; if the publish is
// not acknowledged, w stays for redelivery (the original is never dropped).
func (p *Processor) deadLetter(ctx context.Context, w *work, reason string, cause error, fieldErrs []string) {
	now := time.Now()
	dl := &stream.DeadLetter{
		Reason:         reason,
		Error:          cause.Error(),
		FieldErrors:    fieldErrs,
		Attempts:       max(w.it.Delivery, 1),
		OrigStream:     w.it.Stream,
		OrigSeq:        w.it.Seq,
		OrigSubject:    w.it.Subject,
		Hash:           w.hash,
		FirstFailure:   cmpFirst(w.firstFail, now),
		LastFailure:    now,
		DeadLetteredBy: "ticketer",
	}
	class := map[string]string{stream.ReasonJiraRejected: "rejected", stream.ReasonExhausted: "transient"}[reason]
	if class == "" {
		class = "unmappable"
	}
	p.cfg.Metrics.failed(class)
	if w.it.NoDeadLetter {
		w.out = &Outcome{Status: StatusRejected, Err: cause, DeadLetter: dl}
		return
	}
	// Keep trying within this delivery: this is the event's last chance
	// under MAX_DELIVER, and leaving it for a redelivery would only come back
	// here. Only shutdown stops the retries.
	var ack *jetstream.PubAck
	attempt := 0
	backoff := retry.WithCappedDuration(5*time.Second, retry.WithJitterPercent(20, retry.NewExponential(200*time.Millisecond)))
	err := retry.Do(ctx, backoff, func(ctx context.Context) error {
		attempt++
		if w.it.KeepAlive != nil {
			w.it.KeepAlive()
		}
		// A publish already sent is not abandoned half-way by shutdown.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		a, err := p.cfg.JS.PublishMsg(pctx, dl.Msg(stream.DLQTicketer, w.it.Data))
		if err != nil {
			p.log.Warn("dead-letter publish failed; retrying", "hash", w.hash, "stream_seq", w.it.Seq, "attempt", attempt, "err", err)
			return retry.RetryableError(err)
		}
		ack = a
		return nil
	})
	if err != nil {
		p.log.Error("dead-letter publish abandoned at shutdown; the event stays in FORMS (redelivered, or `ticketer replay --from-seq` it)",
			"hash", w.hash, "stream_seq", w.it.Seq, "reason", reason, "err", err)
		w.lastErr = fmt.Errorf("dead-letter publish: %w", err)
		w.out = &Outcome{Status: StatusRetry, Err: w.lastErr, RetryIn: 5 * time.Second}
		return
	}
	p.cfg.Metrics.deadLettered(reason)
	p.log.Error("event dead-lettered", "hash", w.hash, "stream_seq", w.it.Seq, "reason", reason,
		"error", cause.Error(), "field_errors", strings.Join(fieldErrs, " | "), "dlq_seq", ack.Sequence, "attempt", dl.Attempts)
	w.out = &Outcome{Status: StatusDeadLettered, Err: cause, DeadLetter: dl, DLQSeq: ack.Sequence}
}

// Meta is Jira's view of the target fields, cached until a failure
// suggests it changed.
func (p *Processor) Meta(ctx context.Context) (*ticket.Meta, error) {
	p.metaMu.Lock()
	defer p.metaMu.Unlock()
	if p.meta != nil && !p.metaOld {
		return p.meta, nil
	}
	m, err := p.cfg.Jira.Meta(ctx, p.cfg.Mapping.Target())
	if err != nil {
		if p.meta != nil && !errors.Is(err, jira.ErrAuth) {
			return p.meta, nil // a stale view beats none while Jira hiccups
		}
		return nil, fmt.Errorf("fetch Jira field metadata: %w", err)
	}
	p.meta, p.metaAt, p.metaOld = m, time.Now(), false
	return m, nil
}

func (p *Processor) metaAge() time.Duration {
	p.metaMu.Lock()
	defer p.metaMu.Unlock()
	return time.Since(p.metaAt)
}

func (p *Processor) invalidateMeta() {
	p.metaMu.Lock()
	p.metaOld = true
	p.metaMu.Unlock()
}
