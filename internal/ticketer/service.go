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
	"golang.org/x/sync/errgroup"

	"github.com/cowjacket/formjira/internal/alert"
	"github.com/cowjacket/formjira/internal/config"
	"github.com/cowjacket/formjira/internal/index"
	"github.com/cowjacket/formjira/internal/jira"
	"github.com/cowjacket/formjira/internal/jirasite"
	"github.com/cowjacket/formjira/internal/natsconn"
	"github.com/cowjacket/formjira/internal/stats"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/telemetry"
	"github.com/cowjacket/formjira/internal/ticketing"
)

// drainTimeout is how long in-flight work may finish after SIGTERM; the
// design promises an exit within 10 s, which stopLimit enforces whatever
// is still busy (flushing counters, the index, a slow NATS).
const (
	drainTimeout = 7 * time.Second
	stopLimit    = 9 * time.Second
)

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
	site    *jirasite.Site
	refused refusals
	index   *index.Recorder // nil: FORMS_INDEX could not be set up
	health  *jiraHealth

	setUp      atomic.Bool // streams, bucket and consumer exist
	authBroken atomic.Bool
	authMu     sync.Mutex // one worker probes Jira while the others wait
	consuming  atomic.Bool

	js         jetstream.JetStream
	restoreMu  sync.Mutex // restoreConsumer: one worker at a time
	restoredAt time.Time
}

// Serve runs the ticketer service until ctx ends: consume FORMS, create
// tickets, serve metrics and readiness, send alerts. A NATS server that
// refuses the connection (at start or later: credentials changed, a
// certificate it no longer trusts) stops it with that one line.
func Serve(ctx context.Context, cfg *Config, log *slog.Logger) error {
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	c := *cfg
	c.NATS.OnRefused = func(err error) { stop(err) }
	err := serve(ctx, &c, log)
	var ce *config.Error
	if cause := context.Cause(ctx); errors.As(cause, &ce) {
		return cause
	}
	return err
}

func serve(ctx context.Context, cfg *Config, log *slog.Logger) error {
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
	shared := newSharedAlerts(alerter, acfg.WithDefaults().MinInterval, log)
	alerts := newAlerting(acfg, shared, log)
	var jc *jira.Client
	s := &service{cfg: cfg, log: log, metrics: metrics, pacer: pacer, alerts: alerts, health: newJiraHealth()}
	s.site = newSite(&jc, pacer, metrics, alerts, func() *stats.Recorder { return s.stats }, log)
	observe := func(op string, status int, d time.Duration) {
		metrics.observeJira(op, status, d)
		s.health.observe(status, d)
	}
	if jc, err = cfg.JiraClient(m, jira.Options{Pacer: pacer, Observe: observe, Gate: s.site.Gate, Result: s.site.Result}); err != nil {
		return err
	}
	if err := checkCredentials(ctx, cfg, jc, log); err != nil {
		return err
	}
	// NATS may not be up yet (a first rollout, a node being replaced):
	// connect in the background and wait, unready, instead of exiting.
	nc, js, err := cfg.Connect(ctx, log, natsconn.WaitForServer(log)...)
	if err != nil {
		return err
	}
	defer nc.Close()
	s.nc = nc
	serveCtx, stopServe := context.WithCancel(ctx)
	defer stopServe()
	wait, err := telemetry.Serve(serveCtx, cfg.HTTPAddr, telemetry.NotedHandler(reg, s.ready), log)
	if err != nil {
		return fmt.Errorf("HTTP_ADDR: %w", err)
	}
	var engine *ticketing.Engine
	var cons jetstream.Consumer
	forbidden := func() error { return cfg.NATS.Forbidden(nc) }
	err = setup(ctx, log, forbidden, func(ctx context.Context) error {
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
		if engine, err = cfg.Engine(js, stream.Tickets{KV: kv}, m, jc, pacer, s.site, requesters, engineMetrics, log); err != nil {
			return err
		}
		jkv, err := stream.EnsureJira(ctx, js, cfg.Streams)
		if err != nil {
			return err
		}
		s.site.Attach(jkv)
		s.health.attach(jkv)
		shared.attach(jkv)
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
	s.engine, s.cons, s.js = engine, cons, js
	s.setUp.Store(true)
	// s.stats stays nil when FORMS_STATS cannot be set up (it races like
	// the others, so it gets a few attempts): daily counters off, tickets
	// unaffected.
	sctx, cancelStats := context.WithTimeout(ctx, 10*time.Second)
	err = setup(sctx, log, forbidden, func(ctx context.Context) error { _, err := stream.EnsureStats(ctx, js, cfg.Streams); return err })
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
	// Likewise the request index: trace is blind without it, tickets are not.
	ictx, cancelIndex := context.WithTimeout(ctx, 10*time.Second)
	var tailer *index.Tailer
	err = setup(ictx, log, forbidden, func(ctx context.Context) error { var err error; tailer, err = s.setUpIndex(ctx, js); return err })
	cancelIndex()
	if err != nil {
		if ctx.Err() != nil {
			stopServe()
			_ = wait()
			return nil
		}
		log.Warn("request index off (ticketer trace, console search)", "err", err)
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
	g.Go(func() error { s.site.Run(gctx); return nil })
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
	// The sender outlives the claims, which hand it their last alerts.
	claimed := make(chan struct{})
	g.Go(func() error { defer close(claimed); shared.run(afterWork); return nil })
	if alerter.Enabled() {
		sendCtx, endSend := context.WithCancel(context.WithoutCancel(afterWork))
		g.Go(func() error { <-claimed; endSend(); return nil })
		g.Go(func() error { return alerter.Run(sendCtx) })
	}
	g.Go(func() error { s.stats.Run(afterWork); return nil })
	g.Go(func() error { s.index.Run(afterWork); return nil })
	if tailer != nil {
		g.Go(func() error { tailer.Run(gctx); return nil })
	}
	g.Go(func() error { s.health.run(gctx, s.site.ID()); return nil })
	g.Go(func() error { s.stats.DailySummaries(gctx); return nil })
	g.Go(func() error { s.alerts.watch(gctx); return nil })
	err = waitBounded(ctx, g.Wait, stopLimit, log)
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

// ready is what Kubernetes needs to know: 503 for what this pod must fix
// (not connected, not set up, Jira refusing its credentials: a rollout with
// a bad secret stalls instead of replacing good pods), 200 otherwise — also
// while Jira is down, which no restart fixes; the note says so.
func (s *service) ready() (string, error) {
	switch {
	case s.nc.Status() != nats.CONNECTED:
		return "", errors.New("not connected to NATS")
	case !s.setUp.Load():
		return "", errors.New("starting: setting up FORMS, FORMS_DLQ, FORMS_TICKETS and the consumer")
	case s.authBroken.Load():
		return "", errors.New("Jira refuses the credentials or a permission (see the log: JIRA_EMAIL/JIRA_API_TOKEN or JIRA_PAT)")
	case !s.consuming.Load():
		return "", errors.New("not consuming")
	}
	return s.jiraNote(), nil
}

// waitBounded is wait(), but returns at most limit after ctx ends: leaving
// work unfinished is what a crash does, and the claims make that safe (an
// unknown outcome is reconciled on redelivery).
func waitBounded(ctx context.Context, wait func() error, limit time.Duration, log *slog.Logger) error {
	done := make(chan error, 1)
	go func() { done <- wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		log.Warn("still busy after the stop limit; stopping anyway (what was in flight is reconciled on redelivery)", "limit", limit)
		return nil
	}
}
