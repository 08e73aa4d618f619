// Package capture is the capture service and its operations: it streams
// committed rows of the form table from PostgreSQL (pgcdc) into JetStream
// stream FORMS and confirms the replication slot only as far as JetStream
// has acknowledged (see design.md, guarantee 1); Backfill and Status are
// the operations behind `capture backfill` and `capture status`.
//
// The data's path: pgcdc.Stream reads and decodes rows → publisher (a
// pgcdc.Sink) encodes them (stream's codec) and publishes them until
// JetStream acknowledges them → the stream confirms what the publisher says
// is delivered. serve wires them together.
package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/cowjacket/formjira/internal/alert"
	"github.com/cowjacket/formjira/internal/config"
	"github.com/cowjacket/formjira/internal/natsconn"
	"github.com/cowjacket/formjira/internal/pgcdc"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/telemetry"
)

// ErrAbandon, as the cause of Run's context cancellation, stops the service
// without draining or confirming: the in-process equivalent of kill -9.
var ErrAbandon = pgcdc.ErrAbandon

// Run is the capture service: configuration from getenv (a bad one is a
// one-line error naming the variable), JSON logs to stderr, serving until
// ctx ends. cmd/capture, the end-to-end tests, the demo and the benchmark
// all run it.
func Run(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := LoadConfig(getenv)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, telemetry.NewLogger(stderr, cfg.LogLevel), nil)
}

// serve runs the capture service until ctx ends. reg may be nil (a new
// registry with the Go and process collectors). A NATS server that refuses
// the connection later (credentials changed, a certificate it no longer
// trusts) stops it with that one line: retrying cannot cure it.
func serve(ctx context.Context, cfg Config, log *slog.Logger, reg *prometheus.Registry) error {
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	cfg.NATS.OnRefused = func(err error) { stop(err) }
	err := serveUntil(ctx, cfg, log, reg)
	if cause := context.Cause(ctx); isConfigError(cause) {
		return cause
	}
	return err
}

func isConfigError(err error) bool {
	var ce *config.Error
	return errors.As(err, &ce)
}

func serveUntil(ctx context.Context, cfg Config, log *slog.Logger, reg *prometheus.Registry) error {
	if reg == nil {
		reg = telemetry.NewRegistry()
	}
	m := newMetrics(reg)

	// /healthz and /metrics answer from the start, /readyz says "starting"
	// until capture streams or stands by: a liveness probe must not kill
	// a capture that waits for PostgreSQL or NATS.
	var ready atomic.Pointer[func(http.ResponseWriter)]
	mux := http.NewServeMux()
	mux.Handle("/", telemetry.Handler(reg, nil))
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if f := ready.Load(); f != nil {
			(*f)(w)
			return
		}
		http.Error(w, "not ready: starting (connecting to PostgreSQL and NATS)", http.StatusServiceUnavailable)
	})
	serveCtx, stopServe := context.WithCancel(ctx)
	defer stopServe()
	httpWait, err := telemetry.Serve(serveCtx, cfg.HTTPAddr, mux, log)
	if err != nil {
		return fmt.Errorf("HTTP_ADDR: %w", err)
	}

	nc, js, err := prepare(ctx, cfg, log)
	if err != nil {
		// A stop signal while still retrying start-up is a clean exit.
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer nc.Close()

	pub, err := newPublisher(nc, stream.Subject(cfg.Table.Schema, cfg.Table.Name), int(nc.MaxPayload()), cfg.MaxInFlight, cfg.AckTimeout, log, m)
	if err != nil {
		return err
	}
	defer pub.close()
	var rep *reporter
	st := pgcdc.New(pgcdc.Options{
		DSN: cfg.DatabaseURL, Table: cfg.Table, Slot: cfg.Slot, Publication: cfg.Publication,
		HashFields: cfg.HashFields, StatusInterval: cfg.StatusInterval, StandbyPoll: cfg.StandbyPoll,
		DrainTimeout: 5 * time.Second, Log: log,
		OnReconnect: m.reconnects.Inc,
		OnCaptured:  m.captured.Inc,
		OnState: func(s pgcdc.State) {
			active := 0.0
			if s == pgcdc.StateStreaming {
				active = 1
			}
			m.active.Set(active)
			rep.stateChanged()
		},
		OnError: func(err error) { rep.failed(err) },
	})
	kv, err := js.KeyValue(ctx, stream.CaptureStatusBucket)
	if err != nil {
		return fmt.Errorf("KV bucket %s: %w", stream.CaptureStatusBucket, err)
	}
	rep = newReporter(kv, cfg, st.State, &pub.tally, log)
	pub.onError = rep.failed

	readyNow := func(w http.ResponseWriter) { readyz(w, st.State(), nc.IsConnected()) }
	ready.Store(&readyNow)

	// Alerts are off (a no-op Alerter, no watcher) without an ALERT_* sink.
	alerter := alert.New(cfg.Alert, log)
	var watch *watcher
	if alerter.Enabled() {
		watch = newWatcher(cfg, alerter, st, pub, nc.IsConnected)
		pub.onDead = watch.deadLettered
		log.Info("alerts on", "alerts", cfg.Alert, "stall_after", cfg.Alert.CaptureStallAfter.String(), "slot_lag_bytes", cfg.Alert.SlotLagBytes)
	}

	// The acker outlives the stream: the stream drains through it on
	// shutdown, then the acker stops. The Alerter outlives both, so dead
	// letters of the drain are still reported, then flushes (bounded).
	ackCtx, stopAcker := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAcker()
	alertCtx, stopAlerts := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAlerts()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return pub.run(ackCtx) })
	g.Go(func() error {
		defer stopAlerts()
		defer stopAcker()
		return st.Run(gctx, pub)
	})
	g.Go(func() error { restoreStreams(gctx, js, cfg.Streams, pub.missing, log); return nil })
	g.Go(func() error { pgcdc.Heartbeat(gctx, cfg.DatabaseURL, cfg.HeartbeatInterval, log); return nil })
	g.Go(func() error { rep.run(gctx); return nil })
	g.Go(func() error {
		pgcdc.WatchSlot(gctx, cfg.DatabaseURL, cfg.Slot, min(10*time.Second, cfg.StatusInterval), log, func(s pgcdc.SlotInfo) {
			m.lagBytes.Set(float64(s.LagBytes))
			m.retainedWAL.Set(float64(s.RetainedBytes))
			rep.slotPolled(s)
			if watch != nil {
				watch.slotPolled(s)
			}
		})
		return nil
	})
	if watch != nil {
		g.Go(func() error { watch.run(gctx); return nil })
		g.Go(func() error { return alerter.Run(alertCtx) })
	}
	err = g.Wait()
	stopServe()
	if herr := httpWait(); err == nil {
		err = herr
	}
	return err
}

// prepare readies PostgreSQL (table, publication, slot) and NATS (the
// connection, the streams) at once: start-up is time a backlog waits. A
// PostgreSQL failure ends NATS's retrying; a NATS failure ends PostgreSQL's
// retrying of an unreachable server, but not an attempt under way: the slot
// is still made, so rows committed until NATS is fixed are kept.
func prepare(ctx context.Context, cfg Config, log *slog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	natsCtx, stopNATS := context.WithCancel(ctx)
	defer stopNATS()
	// Not even a stop (a NATS refusal is one) cuts a PostgreSQL attempt
	// short; it ends the retrying. An attempt is bounded (10 s).
	giveUp := make(chan struct{})
	stopRetrying := sync.OnceFunc(func() { close(giveUp) })
	defer context.AfterFunc(ctx, stopRetrying)()
	var nc *nats.Conn
	var js jetstream.JetStream
	var nerr error
	natsDone := make(chan struct{})
	go func() {
		defer close(natsDone)
		if nc, js, nerr = connectNATS(natsCtx, cfg, log, true); nerr != nil {
			stopRetrying()
		}
	}()
	perr := pgcdc.Prepare(context.WithoutCancel(ctx), giveUp, cfg.DatabaseURL, cfg.Table, cfg.HashFields, cfg.Publication, cfg.Slot, log)
	if perr == nil && ctx.Err() != nil {
		perr = ctx.Err()
	}
	if perr != nil {
		stopNATS()
	}
	<-natsDone
	switch {
	case nerr != nil && (perr == nil || !errors.Is(nerr, context.Canceled)):
		return nil, nil, nerr // NATS's own failure (connectNATS closed nc)
	case perr != nil:
		if nc != nil {
			nc.Close()
		}
		return nil, nil, perr
	}
	return nc, js, nil
}

// readyz answers /readyz: ready is the active capture (streaming) and a
// healthy standby (PostgreSQL answered its last try for the slot, NATS is
// connected: it can take over at once), so that a Deployment's rollout
// completes with a standby; anything else is 503 saying why.
func readyz(w http.ResponseWriter, st pgcdc.State, natsUp bool) {
	var role string
	switch st {
	case pgcdc.StateStreaming:
		role = "active (streaming)"
	case pgcdc.StateStandby:
		role = "standby (another capture holds the replication slot; this one takes over when it is free)"
	default:
		http.Error(w, "not ready: "+st.String(), http.StatusServiceUnavailable)
		return
	}
	if !natsUp {
		http.Error(w, "not ready: NATS disconnected", http.StatusServiceUnavailable)
		return
	}
	_, _ = io.WriteString(w, "ready: "+role+"\n")
}

// connectNATS connects (retrying for ever while the server does not answer:
// capture is useless without NATS and says so; a refusal ends it) and
// creates or updates the streams and the status bucket.
// connectNATS connects and readies the streams: the service creates or
// updates them (it owns FORMS); a one-off command (backfill) only creates
// what is missing, so a shell without the service's DUPLICATE_WINDOW or
// STREAM_REPLICAS does not rewrite FORMS.
func connectNATS(ctx context.Context, cfg Config, log *slog.Logger, service bool) (*nats.Conn, jetstream.JetStream, error) {
	refused := make(chan error, 1)
	then := cfg.NATS.OnRefused
	cfg.NATS.OnRefused = func(err error) {
		refused <- err // called at most once
		if then != nil {
			then(err)
		}
	}
	opts := append(natsconn.WaitForServer(log), nats.ReconnectWait(250*time.Millisecond), nats.CustomInboxPrefix(natsconn.CaptureInbox))
	nc, err := natsconn.Connect(cfg.NATS, "cowjacket-capture", log, opts...)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	sc := cfg.Streams
	for attempt := 1; ; attempt++ {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var err1, err2, err3 error
		if service {
			_, err1 = stream.EnsureForms(sctx, js, sc)
		} else {
			_, err1 = stream.EnsureExists(sctx, js, stream.FormsConfig(sc))
		}
		if err1 == nil {
			_, err2 = stream.EnsureDLQ(sctx, js, sc)
		}
		if err1 == nil && err2 == nil && service {
			_, err3 = stream.EnsureCaptureStatus(sctx, js, sc)
		}
		cancel()
		err := errors.Join(err1, err2, err3)
		if err == nil {
			// Wait for the first connection so MaxPayload is the server's.
			return nc, js, nil
		}
		if ctx.Err() != nil {
			nc.Close()
			return nil, nil, ctx.Err()
		}
		if ferr := cfg.NATS.Forbidden(nc); ferr != nil {
			nc.Close()
			return nil, nil, ferr
		}
		log.Warn("NATS unreachable or JetStream not ready; retrying", "url", cfg.NATS.Redacted(), "error", err.Error(), "attempt", attempt)
		select {
		case <-ctx.Done():
		case err := <-refused:
			nc.Close()
			return nil, nil, err
		case <-time.After(min(time.Duration(attempt)*500*time.Millisecond, 5*time.Second)):
		}
	}
}
