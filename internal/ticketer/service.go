package ticketer

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
	"github.com/sethvargo/go-retry"
	"golang.org/x/sync/errgroup"

	"github.com/cowjacket/formjira/internal/alert"
	"github.com/cowjacket/formjira/internal/jira"
	"github.com/cowjacket/formjira/internal/natsconn"
	"github.com/cowjacket/formjira/internal/stats"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/telemetry"
	"github.com/cowjacket/formjira/internal/ticketing"
)

// drainTimeout is how long in-flight work may finish after SIGTERM; the
// design promises an exit within 10 s.
const drainTimeout = 7 * time.Second

type service struct {
	cfg     *Config
	log     *slog.Logger
	nc      *nats.Conn
	cons    jetstream.Consumer
	engine  *ticketing.Engine
	metrics *Metrics
	pacer   *jira.Pacer
	alerts  *alerting
	stats   *stats.Recorder

	setUp      atomic.Bool // streams, bucket and consumer exist
	authBroken atomic.Bool
	authMu     sync.Mutex // one worker probes Jira while the others wait
	consuming  atomic.Bool
}

// Serve runs the ticketer service until ctx ends: consume FORMS, create
// tickets, serve metrics and readiness, send alerts.
func Serve(ctx context.Context, cfg *Config, log *slog.Logger) error {
	if err := cfg.RequireJira(); err != nil {
		return err
	}
	acfg := cfg.Alert
	acfg.FlushTimeout = 2 * time.Second // with drainTimeout, inside the 10 s exit promise
	m, err := cfg.LoadMapping()
	if err != nil {
		return err
	}
	reg := telemetry.NewRegistry()
	metrics := NewMetrics(reg)
	engineMetrics := ticketing.NewMetrics(reg)
	pacer := jira.NewPacer(cfg.JiraRate)
	alerter := alert.New(acfg, log)
	alerts := newAlerting(acfg, alerter, log)
	jc, err := cfg.JiraClient(m, pacer, func(op string, status int, d time.Duration) {
		metrics.observeJira(op, status, d)
		alerts.observeJira(op, status, d)
	})
	if err != nil {
		return err
	}
	// NATS may not be up yet (a first rollout, a node being replaced):
	// connect in the background and wait, unready, instead of exiting.
	nc, js, err := cfg.Connect(ctx, log, natsconn.WaitForServer(log)...)
	if err != nil {
		return err
	}
	defer nc.Close()
	s := &service{
		cfg: cfg, log: log, nc: nc, metrics: metrics, pacer: pacer, alerts: alerts,
	}
	serveCtx, stopServe := context.WithCancel(ctx)
	defer stopServe()
	wait, err := telemetry.Serve(serveCtx, cfg.HTTPAddr, telemetry.Handler(reg, s.ready), log)
	if err != nil {
		return fmt.Errorf("HTTP_ADDR: %w", err)
	}
	var engine *ticketing.Engine
	var cons jetstream.Consumer
	err = setup(ctx, log, func(ctx context.Context) error {
		// capture owns FORMS (its duplicate window and replicas): create it
		// only when ticketer starts first, never rewrite it.
		if _, err := stream.EnsureExists(ctx, js, stream.FormsConfig(cfg.Streams)); err != nil {
			return err
		}
		if _, err := stream.EnsureDLQ(ctx, js, cfg.Streams); err != nil {
			return err
		}
		kv, err := stream.EnsureTickets(ctx, js, cfg.Streams)
		if err != nil {
			return err
		}
		requesters, err := cfg.Requesters(ctx, js, m, jc, true, log)
		if err != nil {
			return err
		}
		if engine, err = cfg.Engine(js, stream.Tickets{KV: kv}, m, jc, pacer, requesters, engineMetrics, log); err != nil {
			return err
		}
		if cons, err = js.CreateOrUpdateConsumer(ctx, stream.Forms, cfg.ConsumerConfig()); err != nil {
			return fmt.Errorf("create consumer %s on %s: %w", stream.TicketerConsumer, stream.Forms, err)
		}
		return nil
	})
	if err != nil {
		stopServe()
		_ = wait()
		if errors.Is(err, context.Canceled) {
			log.Info("ticketer stopped before it was set up")
			return nil
		}
		return err
	}
	s.engine, s.cons = engine, cons
	s.setUp.Store(true)
	// s.stats stays nil when FORMS_STATS cannot be set up (it races like
	// the others, so it gets a few attempts): daily counters off, tickets
	// unaffected.
	sctx, cancelStats := context.WithTimeout(ctx, 10*time.Second)
	err = setup(sctx, log, func(ctx context.Context) error { _, err := stream.EnsureStats(ctx, js, cfg.Streams); return err })
	cancelStats()
	if err != nil {
		if ctx.Err() != nil {
			stopServe()
			_ = wait()
			return nil
		}
		log.Warn("daily counters off (ticketer stats, daily summary)", "err", err)
	} else {
		s.stats = stats.NewRecorder(js, log)
	}
	log.Info("ticketer starting", "mode", string(m.Mode()), "api_version", m.APIVersion(), "project", m.Project(),
		"concurrency", cfg.Concurrency, "batch_size", cfg.BatchSize, "jira_rate", cfg.JiraRate, "alerts", acfg)

	// Work outlives the signal by drainTimeout so in-flight creates finish
	// and are recorded rather than left with an unknown outcome.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stopDrain := context.AfterFunc(ctx, func() { time.AfterFunc(drainTimeout, cancelWork) })
	defer stopDrain()

	g, gctx := errgroup.WithContext(ctx)
	// Deferred label edits (JSM) are queued from now on, and drained on the
	// pacer's low-priority lane.
	s.engine.QueueLabelEdits()
	g.Go(func() error { s.engine.RunLabelEdits(gctx, cfg.Concurrency); return nil })
	var workers sync.WaitGroup
	for range cfg.Concurrency {
		workers.Add(1)
		g.Go(func() error { defer workers.Done(); s.work(gctx, workCtx); return nil })
	}
	g.Go(func() error { s.pollPending(gctx); return nil })
	// Alerts and daily counters outlive the workers so that what the last
	// batches produced is still sent and saved.
	afterWork, endAfterWork := context.WithCancel(context.WithoutCancel(gctx))
	defer endAfterWork()
	g.Go(func() error { workers.Wait(); endAfterWork(); return nil })
	if alerter.Enabled() {
		g.Go(func() error { return alerter.Run(afterWork) })
	}
	g.Go(func() error { s.stats.Run(afterWork); return nil })
	g.Go(func() error { s.stats.DailySummaries(gctx); return nil })
	g.Go(func() error { s.alerts.watch(gctx); return nil })
	err = g.Wait()
	stopServe()
	if werr := wait(); err == nil {
		err = werr
	}
	log.Info("ticketer stopped")
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// setupAttemptTimeout bounds attempt n (1-based) at creating or updating
// the streams, the bucket and the consumer: 2 s for the first three, then
// doubling up to 10 s. nats-server may leave concurrent creates of the same
// clustered stream unanswered (replicas rolled out together, cf.
// nats-server#3677), and replicas started together race again at each of
// FORMS, FORMS_TICKETS, FORMS_DLQ and the consumer: each loser must give up
// soon and retry, and the retry takes the update path, answered at once. A
// slow cluster still gets the time it needs from the later attempts.
func setupAttemptTimeout(n int) time.Duration {
	return min(2*time.Second<<min(max(n-3, 0), 3), 10*time.Second)
}

// setup runs once (creating or updating what the service needs) until it
// succeeds or ctx ends, each attempt bounded by setupAttemptTimeout, with
// capped exponential backoff and jitter in between. Each failure is logged
// once, with its attempt number.
func setup(ctx context.Context, log *slog.Logger, once func(context.Context) error) error {
	attempt := 0
	b := retry.WithJitterPercent(20, retry.WithCappedDuration(5*time.Second, retry.NewExponential(250*time.Millisecond)))
	err := retry.Do(ctx, b, func(ctx context.Context) error {
		attempt++
		actx, cancel := context.WithTimeout(ctx, setupAttemptTimeout(attempt))
		defer cancel()
		err := once(actx)
		switch {
		case err == nil:
			if attempt > 1 {
				log.Info("NATS set up", "attempt", attempt)
			}
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		}
		log.Warn("NATS unreachable or JetStream not ready; retrying", "attempt", attempt, "err", err)
		return retry.RetryableError(err)
	})
	if err != nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	return err
}

func (s *service) ready() error {
	switch {
	case s.nc.Status() != nats.CONNECTED:
		return errors.New("not connected to NATS")
	case !s.setUp.Load():
		return errors.New("starting: setting up FORMS, FORMS_DLQ, FORMS_TICKETS and the consumer")
	case s.authBroken.Load():
		return errors.New("Jira refuses the credentials (JIRA_EMAIL/JIRA_API_TOKEN or JIRA_PAT)")
	case !s.consuming.Load():
		return errors.New("not consuming")
	}
	return nil
}

// work is one worker: it pulls a batch only when it is free, so no event
// waits in a client-side buffer while its AckWait runs out. The first event
// is long-polled; the rest of the batch is what is already waiting (see
// more), gathered within BATCH_WAIT. While Jira refuses the credentials
// nothing is pulled.
func (s *service) work(ctx, workCtx context.Context) {
	for ctx.Err() == nil {
		if err := s.waitForAuth(ctx); err != nil {
			return
		}
		s.consuming.Store(true)
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		first, err := s.cons.Next(jetstream.FetchContext(pctx))
		cancel()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
				s.log.Warn("pull from FORMS failed", "err", err)
				sleepCtx(ctx, 500*time.Millisecond)
			}
			continue
		}
		batch := []jetstream.Msg{first}
		if want := s.more(first); want > 0 {
			if more, err := s.cons.Fetch(want, jetstream.FetchMaxWait(s.cfg.BatchWait)); err == nil {
				for m := range more.Messages() {
					batch = append(batch, m)
				}
			}
		}
		s.handle(workCtx, ctx, batch)
	}
}

// more is how many events to add to a batch that starts with first: those
// already waiting in FORMS (the first event's pending count), up to
// BATCH_SIZE. When none is waiting the batch goes at once, so a quiet
// stream pays no BATCH_WAIT; under load batches fill from the backlog that
// builds while the workers are busy with Jira.
func (s *service) more(first jetstream.Msg) int {
	want := s.cfg.BatchSize - 1
	if want <= 0 {
		return 0
	}
	if md, err := first.Metadata(); err == nil {
		want = int(min(md.NumPending, uint64(want)))
	}
	return want
}

// waitForAuth blocks while Jira refuses the credentials, probing with
// backoff, so that nothing is consumed (and nothing wasted) meanwhile.
func (s *service) waitForAuth(ctx context.Context) error {
	if !s.authBroken.Load() {
		return nil
	}
	s.consuming.Store(false)
	s.authMu.Lock()
	defer s.authMu.Unlock()
	if !s.authBroken.Load() {
		return nil
	}
	b := retry.WithCappedDuration(30*time.Second, retry.NewExponential(500*time.Millisecond))
	for {
		s.engine.InvalidateMeta()
		_, err := s.engine.Meta(ctx)
		if err == nil {
			s.authBroken.Store(false)
			s.log.Info("Jira accepts the credentials again; resuming")
			return nil
		}
		if !ticketing.Refused(err) {
			// Jira is reachable enough to answer something else: resume and
			// let the usual retries deal with it.
			s.authBroken.Store(false)
			return nil
		}
		s.log.Error("JIRA REFUSES THE CREDENTIALS: not consuming until fixed (check JIRA_EMAIL/JIRA_API_TOKEN or JIRA_PAT)", "err", err)
		d, _ := b.Next()
		if !sleepCtx(ctx, d) {
			return ctx.Err()
		}
	}
}

// handle processes one batch and settles every message: ack, term after a
// dead letter, or nak with a delay. Nothing is left unsettled.
func (s *service) handle(workCtx, runCtx context.Context, batch []jetstream.Msg) {
	items := make([]ticketing.Item, len(batch))
	for i, msg := range batch {
		it := ticketing.Item{Data: msg.Data(), Subject: msg.Subject(), Stream: stream.Forms, Delivery: 1}
		if md, err := msg.Metadata(); err == nil {
			it.Stream, it.Seq, it.Delivery = md.Stream, md.Sequence.Stream, int(md.NumDelivered)
		}
		it.Final = it.Delivery >= s.cfg.MaxDeliver
		it.KeepAlive = func() { _ = msg.InProgress() }
		items[i] = it
	}
	outs := s.engine.Process(ticketing.WithSoftStop(workCtx, runCtx.Done()), items)
	var ok, failed, skipped int
	auth := false
	for i, o := range outs {
		msg, it := batch[i], items[i]
		var err error
		switch o.Status {
		case ticketing.StatusCreated:
			ok++
			err = msg.Ack()
		case ticketing.StatusSkipped:
			skipped++
			err = msg.Ack()
		case ticketing.StatusDeadLettered:
			failed++
			// A last delivery that met refused credentials is dead-lettered
			// (no redelivery would follow a Nak); consuming stops all the same.
			auth = auth || ticketing.Refused(o.Err)
			err = msg.TermWithReason(o.DeadLetter.Reason)
		case ticketing.StatusAuth:
			failed++
			auth = true
			err = msg.NakWithDelay(s.cfg.redelivery(1))
		default: // StatusRetry, StatusRejected
			failed++
			err = msg.NakWithDelay(max(o.RetryIn, s.cfg.redelivery(it.Delivery)))
		}
		if err != nil {
			s.log.Warn("settling message failed; it will be redelivered", "stream_seq", it.Seq, "err", err)
		}
	}
	s.log.Info(fmt.Sprintf("batch complete: %d successful, %d failed, %d skipped", ok, failed, skipped),
		"successful", ok, "failed", failed, "skipped", skipped, "batch", len(batch))
	s.afterBatch(items, outs)
	if auth && !s.authBroken.Swap(true) {
		s.log.Error("JIRA REFUSES THE CREDENTIALS: stopped consuming; events stay in FORMS (check JIRA_EMAIL/JIRA_API_TOKEN or JIRA_PAT)")
	}
}

// pollPending exports the consumer's backlog.
func (s *service) pollPending(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if info, err := s.cons.Info(ictx); err == nil {
			s.metrics.Pending.Set(float64(info.NumPending))
			s.alerts.observeBacklog(info.NumPending)
			s.metrics.AckPending.Set(float64(info.NumAckPending))
		}
		cancel()
		s.metrics.Pace.Set(s.pacer.Rate(""))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sleepCtx waits d; false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
