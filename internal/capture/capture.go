// Package capture is the capture binary: it streams committed rows of the
// form table from PostgreSQL into JetStream stream FORMS and confirms the
// replication slot only as far as JetStream has acknowledged (see
// design.md, guarantee 1). cmd/capture only calls Run.
package capture

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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

const usageText = `capture streams committed rows of the form table into JetStream stream FORMS.

Usage:
  capture                        run the service
  capture backfill [--since DATE] publish rows already in the table (keyset pages)
  capture status                 slot, publication, confirmed LSN, lag, stream state
  capture healthcheck            GET /healthz of the capture on HTTP_ADDR (2 s timeout); exit 0 when healthy
  capture --help                 this text

Configuration (environment, layered over ./.env):
`

// Run is the whole capture binary: args without the program name, the
// environment through getenv (layered over ./.env). A bad configuration is
// a one-line error naming the variable.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := ""
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usageText)
		config.Usage(stdout, Vars)
		return nil
	case "", "backfill", "status", "healthcheck":
	default:
		return fmt.Errorf("unknown command %q (see capture --help)", cmd)
	}
	if (cmd == "" || cmd == "healthcheck") && len(args) > 0 {
		return fmt.Errorf("unexpected arguments %q (see capture --help)", strings.Join(args, " "))
	}
	dotenv, err := config.LoadDotEnv(".env")
	if err != nil {
		return fmt.Errorf(".env: %w", err)
	}
	get := config.Env(getenv, nil, dotenv)
	if cmd == "healthcheck" {
		// Only HTTP_ADDR matters: a probe must not fail on, or read, the
		// service's other settings (DATABASE_URL is a secret).
		r := config.NewReader(get, Vars)
		addr := r.String("HTTP_ADDR")
		return telemetry.Healthcheck(ctx, addr, stdout)
	}
	cfg, err := LoadConfig(get)
	if err != nil {
		return err
	}
	log := telemetry.NewLogger(stderr, cfg.LogLevel)
	switch cmd {
	case "backfill":
		fs := flag.NewFlagSet("backfill", flag.ContinueOnError)
		fs.SetOutput(stderr)
		since := fs.String("since", "", "only rows with createdat on or after this date (YYYY-MM-DD)")
		if err := fs.Parse(args); err != nil {
			return err
		}
		var sinceDate time.Time
		if *since != "" {
			if sinceDate, err = time.Parse(time.DateOnly, *since); err != nil {
				return fmt.Errorf("--since: want YYYY-MM-DD, got %q", *since)
			}
		}
		res, err := Backfill(ctx, cfg, sinceDate, log)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "backfill: %d rows read, %d published, %d duplicates collapsed, %d dead-lettered\n",
			res.Read, res.Published, res.Duplicates, res.DeadLettered)
		return nil
	case "status":
		return Status(ctx, cfg, stdout)
	}
	return Serve(ctx, cfg, log, nil)
}

// Serve runs the capture service until ctx ends. reg may be nil (a new
// registry with the Go and process collectors).
func Serve(ctx context.Context, cfg Config, log *slog.Logger, reg *prometheus.Registry) error {
	if reg == nil {
		reg = telemetry.NewRegistry()
	}
	m := newMetrics(reg)

	// A stop signal while still retrying start-up is a clean exit.
	if err := prepareDatabase(ctx, cfg, log); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	nc, js, err := connectNATS(ctx, cfg, log)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer nc.Close()

	pub := newPublisher(js, stream.Subject(cfg.Table.Schema, cfg.Table.Name), int(nc.MaxPayload()), cfg.MaxInFlight, cfg.AckTimeout, log, m)
	st := pgcdc.New(pgcdc.Options{
		DSN: cfg.DatabaseURL, Table: cfg.Table, Slot: cfg.Slot, Publication: cfg.Publication,
		HashFields: cfg.HashFields, StatusInterval: cfg.StatusInterval, StandbyPoll: cfg.StandbyPoll,
		DrainTimeout: 5 * time.Second, Log: log,
		OnReconnect: m.reconnects.Inc,
		OnCaptured:  m.captured.Inc,
	})

	ready := func() error {
		if s := st.State(); s != pgcdc.StateStreaming {
			return errors.New(s.String())
		}
		if !nc.IsConnected() {
			return errors.New("NATS disconnected")
		}
		return nil
	}
	httpWait, err := telemetry.Serve(ctx, cfg.HTTPAddr, telemetry.Handler(reg, ready), log)
	if err != nil {
		return fmt.Errorf("HTTP_ADDR: %w", err)
	}

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
	g.Go(func() error { heartbeat(gctx, cfg, log); return nil })
	g.Go(func() error {
		pollSlot(gctx, cfg, m, log, func(s SlotInfo) {
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
	if herr := httpWait(); err == nil {
		err = herr
	}
	return err
}

// prepareDatabase runs the start-up checks and setup. An unreachable server
// is retried (it may be starting); an answer that says no is returned.
func prepareDatabase(ctx context.Context, cfg Config, log *slog.Logger) error {
	for attempt := 1; ; attempt++ {
		err := setupOnce(ctx, cfg)
		var pgErr *pgconn.PgError
		if err == nil || errors.Is(err, pgcdc.ErrStartup) || errors.As(err, &pgErr) || ctx.Err() != nil {
			return err
		}
		log.Warn("PostgreSQL unreachable; retrying", "error", err.Error(), "attempt", attempt)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(time.Duration(attempt)*time.Second, 5*time.Second)):
		}
	}
}

func setupOnce(ctx context.Context, cfg Config) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", config.Redact(cfg.DatabaseURL), err)
	}
	defer conn.Close(context.Background())
	if err := pgcdc.Check(cctx, conn, cfg.Table); err != nil {
		return err
	}
	if err := pgcdc.CheckColumns(cctx, conn, cfg.Table, "HASH_FIELDS", cfg.HashFields); err != nil {
		return err
	}
	return pgcdc.Setup(cctx, conn, cfg.Table, cfg.Publication, cfg.Slot)
}

// connectNATS connects (retrying for ever: capture is useless without NATS
// and says so) and creates or updates the streams.
func connectNATS(ctx context.Context, cfg Config, log *slog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := natsconn.Connect(cfg.NATS, "cowjacket-capture", log,
		nats.RetryOnFailedConnect(true), nats.ReconnectWait(250*time.Millisecond))
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(cfg.MaxInFlight),
		// A lost acknowledgement must surface so the row is re-published.
		jetstream.WithPublishAsyncTimeout(cfg.AckTimeout))
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	sc := cfg.Streams
	for attempt := 1; ; attempt++ {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err1 := stream.EnsureForms(sctx, js, sc)
		var err2 error
		if err1 == nil {
			_, err2 = stream.EnsureDLQ(sctx, js, sc)
		}
		cancel()
		err := errors.Join(err1, err2)
		if err == nil {
			// Wait for the first connection so MaxPayload is the server's.
			return nc, js, nil
		}
		if ctx.Err() != nil {
			nc.Close()
			return nil, nil, ctx.Err()
		}
		log.Warn("NATS unreachable or JetStream not ready; retrying", "url", cfg.NATS.Redacted(), "error", err.Error(), "attempt", attempt)
		select {
		case <-ctx.Done():
		case <-time.After(min(time.Duration(attempt)*500*time.Millisecond, 5*time.Second)):
		}
	}
}

// heartbeat writes a logical decoding message now and then: with no WAL
// activity at all the server sends nothing to confirm, and the slot's
// position would stay where the last form row left it.
func heartbeat(ctx context.Context, cfg Config, log *slog.Logger) {
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	t := time.NewTicker(cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var err error
		if conn == nil {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			conn, err = pgx.Connect(cctx, cfg.DatabaseURL)
			cancel()
			if err != nil {
				conn = nil
				log.Debug("heartbeat: connect failed", "error", err.Error())
				continue
			}
		}
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = conn.Exec(qctx, "SELECT pg_logical_emit_message(false, 'cowjacket', 'heartbeat')")
		cancel()
		if err != nil && ctx.Err() == nil {
			log.Debug("heartbeat failed", "error", err.Error())
			conn.Close(context.Background())
			conn = nil
		}
	}
}

// pollSlot exports the slot's lag and retained WAL, and hands every reading
// to polled.
func pollSlot(ctx context.Context, cfg Config, m *metrics, log *slog.Logger, polled func(SlotInfo)) {
	every := min(10*time.Second, cfg.StatusInterval)
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	for {
		if conn == nil {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			c, err := pgx.Connect(cctx, cfg.DatabaseURL)
			cancel()
			if err == nil {
				conn = c
			}
		}
		if conn != nil {
			qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			s, err := ReadSlot(qctx, conn, cfg.Slot)
			cancel()
			switch {
			case err == nil:
				m.lagBytes.Set(float64(s.LagBytes))
				m.retainedWAL.Set(float64(s.RetainedBytes))
				polled(s)
			case ctx.Err() == nil:
				log.Debug("slot metrics failed", "error", err.Error())
				conn.Close(context.Background())
				conn = nil
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// SlotInfo is the slot as pg_replication_slots shows it.
type SlotInfo struct {
	Exists        bool
	Active        bool
	ActivePID     int32
	Confirmed     pglogrepl.LSN
	LagBytes      int64 // pg_current_wal_lsn() - confirmed_flush_lsn
	RetainedBytes int64 // pg_current_wal_lsn() - restart_lsn
}

// ReadSlot reads the slot's state.
func ReadSlot(ctx context.Context, conn *pgx.Conn, slot string) (SlotInfo, error) {
	var s SlotInfo
	var pid *int32
	var confirmed *string
	var lag, retained *int64
	err := conn.QueryRow(ctx, `SELECT active, active_pid, confirmed_flush_lsn::text,
			(pg_current_wal_lsn() - confirmed_flush_lsn)::bigint,
			(pg_current_wal_lsn() - restart_lsn)::bigint
		FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&s.Active, &pid, &confirmed, &lag, &retained)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("read slot %s: %w", slot, err)
	}
	s.Exists = true
	if pid != nil {
		s.ActivePID = *pid
	}
	if confirmed != nil {
		s.Confirmed, _ = pglogrepl.ParseLSN(*confirmed)
	}
	if lag != nil {
		s.LagBytes = *lag
	}
	if retained != nil {
		s.RetainedBytes = *retained
	}
	return s, nil
}
