package ticketer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cowjacket/formjira/internal/alert"
	"github.com/cowjacket/formjira/internal/jira"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/telemetry"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sethvargo/go-retry"
	"golang.org/x/sync/errgroup"
)

// drainTimeout is how long in-flight work may finish after SIGTERM; the
// design promises an exit within 10 s.
const drainTimeout = 7 * time.Second

// ConsumerConfig is the durable pull consumer all ticketer replicas share.
func ConsumerConfig(c *Config) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       stream.TicketerConsumer,
		Description:   "ticketer: one Jira ticket per form event",
		FilterSubject: stream.FormsSubjects,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.AckWait,
		MaxDeliver:    c.MaxDeliver,
		BackOff:       c.Backoff,
		MaxAckPending: c.MaxAckPending,
	}
}

type service struct {
	env     *Env
	cfg     *Config
	log     *slog.Logger
	nc      *nats.Conn
	cons    jetstream.Consumer
	proc    *Processor
	metrics *Metrics
	pacer   *jira.Pacer
	alerts  *alerting
	stats   *statsRecorder

	authBroken atomic.Bool
	authMu     sync.Mutex // one worker probes Jira while the others wait
	consuming  atomic.Bool
}

func runService(ctx context.Context, env *Env, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("ticketer: unexpected arguments %q", args)
	}
	cfg, log := env.Config, env.Log
	acfg, err := alert.ConfigFromEnv(env.Getenv)
	if err != nil {
		return err
	}
	acfg.FlushTimeout = 2 * time.Second // with drainTimeout, inside the 10 s exit promise
	m, err := env.Mapping()
	if err != nil {
		return err
	}
	reg := telemetry.NewRegistry()
	metrics := NewMetrics(reg)
	pacer := jira.NewPacer(cfg.JiraRate)
	alerter := alert.New(acfg, log)
	alerts := newAlerting(acfg, alerter, log)
	jc, err := env.jiraObserved(m, pacer, func(op string, status int, d time.Duration) {
		metrics.observeJira(op, status, d)
		alerts.observeJira(op, status, d)
	})
	if err != nil {
		return err
	}
	nc, js, err := env.Connect(ctx)
	if err != nil {
		return err
	}
	defer nc.Close()
	if _, err := stream.EnsureForms(ctx, js, env.StreamConfig()); err != nil {
		return err
	}
	proc, err := env.NewProcessor(ctx, js, m, jc, pacer, metrics)
	if err != nil {
		return err
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, stream.Forms, ConsumerConfig(cfg))
	if err != nil {
		return fmt.Errorf("create consumer %s on %s: %w", stream.TicketerConsumer, stream.Forms, err)
	}
	var stats *statsRecorder // nil: daily counters off, tickets unaffected
	if _, err := ensureStats(ctx, js, env.StreamConfig()); err != nil {
		log.Warn("daily counters off (ticketer stats, daily summary)", "err", err)
	} else {
		stats = newStatsRecorder(js, log)
	}
	s := &service{
		env: env, cfg: cfg, log: log, nc: nc, cons: cons, proc: proc, metrics: metrics, pacer: pacer,
		alerts: alerts, stats: stats,
	}
	wait, err := telemetry.Serve(ctx, cfg.HTTPAddr, telemetry.Handler(reg, s.ready), log)
	if err != nil {
		return fmt.Errorf("HTTP_ADDR: %w", err)
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
	g.Go(func() error { s.stats.run(afterWork); return nil })
	g.Go(func() error { s.stats.dailySummaries(gctx); return nil })
	g.Go(func() error { s.alerts.watch(gctx); return nil })
	err = g.Wait()
	if werr := wait(); err == nil {
		err = werr
	}
	log.Info("ticketer stopped")
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

func (s *service) ready() error {
	switch {
	case s.nc.Status() != nats.CONNECTED:
		return errors.New("not connected to NATS")
	case s.authBroken.Load():
		return errors.New("Jira refuses the credentials (JIRA_EMAIL/JIRA_API_TOKEN or JIRA_PAT)")
	case !s.consuming.Load():
		return errors.New("not consuming")
	}
	return nil
}

// work is one worker: it pulls a batch only when it is free, so no event
// waits in a client-side buffer while its AckWait runs out. The first event
// is long-polled; the rest of the batch is whatever arrives within
// BATCH_WAIT. While Jira refuses the credentials nothing is pulled.
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
				sleep(ctx, 500*time.Millisecond)
			}
			continue
		}
		batch := []jetstream.Msg{first}
		if s.cfg.BatchSize > 1 {
			if more, err := s.cons.Fetch(s.cfg.BatchSize-1, jetstream.FetchMaxWait(s.cfg.BatchWait)); err == nil {
				for m := range more.Messages() {
					batch = append(batch, m)
				}
			}
		}
		s.handle(workCtx, ctx, batch)
	}
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
		s.proc.invalidateMeta()
		_, err := s.proc.Meta(ctx)
		if err == nil {
			s.authBroken.Store(false)
			s.log.Info("Jira accepts the credentials again; resuming")
			return nil
		}
		if !errors.Is(err, jira.ErrAuth) {
			// Jira is reachable enough to answer something else: resume and
			// let the usual retries deal with it.
			s.authBroken.Store(false)
			return nil
		}
		s.log.Error("JIRA REFUSES THE CREDENTIALS: not consuming until fixed (check JIRA_EMAIL/JIRA_API_TOKEN or JIRA_PAT)", "err", err)
		d, _ := b.Next()
		if !sleep(ctx, d) {
			return ctx.Err()
		}
	}
}

// handle processes one batch and settles every message: ack, term after a
// dead letter, or nak with a delay. Nothing is left unsettled.
func (s *service) handle(workCtx, runCtx context.Context, batch []jetstream.Msg) {
	items := make([]Item, len(batch))
	for i, msg := range batch {
		it := Item{Data: msg.Data(), Subject: msg.Subject(), Stream: stream.Forms, Delivery: 1}
		if md, err := msg.Metadata(); err == nil {
			it.Stream, it.Seq, it.Delivery = md.Stream, md.Sequence.Stream, int(md.NumDelivered)
		}
		it.Final = it.Delivery >= s.cfg.MaxDeliver
		it.KeepAlive = func() { _ = msg.InProgress() }
		items[i] = it
	}
	outs := s.proc.Process(WithSoftStop(workCtx, runCtx.Done()), items)
	var ok, failed, skipped int
	auth := false
	for i, o := range outs {
		msg, it := batch[i], items[i]
		var err error
		switch o.Status {
		case StatusCreated:
			ok++
			err = msg.Ack()
		case StatusSkipped:
			skipped++
			err = msg.Ack()
		case StatusDeadLettered:
			failed++
			err = msg.TermWithReason(o.DeadLetter.Reason)
		case StatusAuth:
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
		s.metrics.Pace.Set(s.pacer.Rate())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
