package pgcdc

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cowjacket/formjira/internal/config"
)

// sessionParams pin how PostgreSQL renders values as text on every session
// capture opens (replication and SQL alike), whatever the server's, the
// database's or the role's defaults: so pgoutput and a table scan send the
// same text (the same hash), and the typed kinds read the layout they
// expect. Shortest-exact floating point (extra_float_digits ≥ 1) keeps
// float values exact.
var sessionParams = map[string]string{
	"DateStyle":          "ISO, MDY",
	"IntervalStyle":      "postgres",
	"TimeZone":           "UTC",
	"extra_float_digits": "1",
}

func pinSession(params map[string]string) {
	for k, v := range sessionParams {
		params[k] = v
	}
}

// Connect opens a regular (SQL) session to the form database, with the
// session settings every capture session has.
func Connect(ctx context.Context, dsn string) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("%w: DATABASE_URL: %v", ErrStartup, err)
	}
	pinSession(cfg.RuntimeParams)
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return nil, ConnectError(dsn, err)
	}
	return conn, nil
}

// ConnectError is err of a failed connection to dsn, as one line: a
// refused login or a TLS verification that failed names DATABASE_URL and
// is a start-up error (retrying cannot cure it); anything else is retried
// by the caller.
func ConnectError(dsn string, err error) error {
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	var pgErr *pgconn.PgError
	var why string
	switch {
	case errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "28"): // invalid_authorization_specification, invalid_password
		why = "PostgreSQL refused the login (role, password, client certificate or pg_hba.conf)"
	case errors.As(err, &host):
		why = "the server's TLS certificate is not for the host name in the URL (sslmode=verify-full checks it)"
	case errors.As(err, &unknown):
		why = "the server's TLS certificate is not signed by the CA of sslrootcert"
	case errors.As(err, &invalid):
		why = "the server's TLS certificate is invalid"
	default:
		return fmt.Errorf("connect to %s: %w", config.Redact(dsn), err)
	}
	return &config.Error{Name: "DATABASE_URL", Err: startupCause{fmt.Errorf("%s: %w", why, err)}}
}

// startupCause is a cause that is also ErrStartup: Prepare does not retry it.
type startupCause struct{ error }

func (e startupCause) Is(target error) bool { return target == ErrStartup }
func (e startupCause) Unwrap() error        { return e.error }

// Prepare runs every start-up check and creates what is missing: logical
// WAL, a role allowed to replicate, the table, the HASH_FIELDS columns, the
// publication and the slot. An unreachable server is retried (it may be
// starting; each failure goes to log) until giveUp is closed (nil: never):
// then the last failure is returned. An attempt under way is not cut short
// by giveUp, so a reachable server still gets its slot. An answer that says
// no is returned at once.
func Prepare(ctx context.Context, giveUp <-chan struct{}, dsn string, t Table, hashFields []string, publication, slot string, log *slog.Logger) error {
	for attempt := 1; ; attempt++ {
		err := prepareOnce(ctx, dsn, t, hashFields, publication, slot, log)
		var pgErr *pgconn.PgError
		if err == nil || errors.Is(err, ErrStartup) || errors.As(err, &pgErr) || ctx.Err() != nil {
			return err
		}
		log.Warn("PostgreSQL unreachable; retrying", "error", err.Error(), "attempt", attempt)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-giveUp:
			return err
		case <-time.After(min(time.Duration(attempt)*time.Second, 5*time.Second)):
		}
	}
}

func prepareOnce(ctx context.Context, dsn string, t Table, hashFields []string, publication, slot string, log *slog.Logger) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := Connect(cctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if err := Check(cctx, conn, t); err != nil {
		return err
	}
	if err := CheckColumns(cctx, conn, t, "HASH_FIELDS", hashFields); err != nil {
		return err
	}
	return Setup(cctx, conn, t, publication, slot, log)
}

// SlotInfo is the slot as pg_replication_slots shows it.
type SlotInfo struct {
	Exists        bool
	Active        bool
	ActivePID     int32
	Confirmed     pglogrepl.LSN
	LagBytes      int64         // pg_current_wal_lsn() - confirmed_flush_lsn
	RetainedBytes int64         // pg_current_wal_lsn() - restart_lsn
	WALEnd        pglogrepl.LSN // pg_current_wal_lsn()
	// WALStatus is reserved, extended, unreserved (WAL due for removal)
	// or lost (invalidated: it can never stream again).
	WALStatus string
}

// ReadSlot reads the slot's state.
func ReadSlot(ctx context.Context, conn *pgx.Conn, slot string) (SlotInfo, error) {
	var s SlotInfo
	var pid *int32
	var confirmed *string
	var lag, retained *int64
	var end string
	err := conn.QueryRow(ctx, `SELECT active, active_pid, confirmed_flush_lsn::text,
			(pg_current_wal_lsn() - confirmed_flush_lsn)::bigint,
			(pg_current_wal_lsn() - restart_lsn)::bigint,
			pg_current_wal_lsn()::text, coalesce(wal_status, '')
		FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&s.Active, &pid, &confirmed, &lag, &retained, &end, &s.WALStatus)
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
	s.WALEnd, _ = pglogrepl.ParseLSN(end)
	return s, nil
}

// PublicationInfo is a publication as pg_publication shows it.
type PublicationInfo struct {
	Exists bool
	Tables []string // schema.table, sorted
}

// ReadPublication reads the publication and the tables it covers.
func ReadPublication(ctx context.Context, conn *pgx.Conn, name string) (PublicationInfo, error) {
	var p PublicationInfo
	err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1),
			coalesce((SELECT array_agg(schemaname || '.' || tablename ORDER BY 1) FROM pg_publication_tables WHERE pubname = $1), '{}')`,
		name).Scan(&p.Exists, &p.Tables)
	if err != nil {
		return p, fmt.Errorf("read publication %s: %w", name, err)
	}
	return p, nil
}

// lazyConn is a session that is opened when needed and dropped after a
// failure, for the loops that outlive any one connection.
type lazyConn struct {
	dsn  string
	conn *pgx.Conn
}

// do runs fn on the session (connecting first if needed), each attempt
// bounded by 5 s; a failure drops the session so the next do reconnects.
func (l *lazyConn) do(ctx context.Context, fn func(context.Context, *pgx.Conn) error) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if l.conn == nil {
		c, err := Connect(cctx, l.dsn)
		if err != nil {
			return err
		}
		l.conn = c
	}
	err := fn(cctx, l.conn)
	if err != nil {
		l.close()
	}
	return err
}

func (l *lazyConn) close() {
	if l.conn != nil {
		l.conn.Close(context.Background())
		l.conn = nil
	}
}

// Heartbeat writes a logical decoding message every interval until ctx
// ends: with no WAL activity at all the server sends nothing to confirm,
// and the slot's position would stay where the last form row left it.
func Heartbeat(ctx context.Context, dsn string, every time.Duration, log *slog.Logger) {
	l := &lazyConn{dsn: dsn}
	defer l.close()
	fails := &streak{what: "heartbeat", why: "an idle slot does not advance, and PostgreSQL keeps its WAL", log: log}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := l.do(ctx, func(ctx context.Context, c *pgx.Conn) error {
			_, err := c.Exec(ctx, "SELECT pg_logical_emit_message(false, 'cowjacket', 'heartbeat')")
			return err
		})
		if ctx.Err() == nil {
			fails.observe(err)
		}
	}
}

// streak logs a failure that repeats at Warn, from its third time in a
// row (a passing blip stays at Debug), and the recovery after it.
type streak struct {
	what, why string
	log       *slog.Logger
	n         int
}

func (s *streak) observe(err error) {
	if err == nil {
		if s.n >= streakWarn {
			s.log.Info(s.what + " works again")
		}
		s.n = 0
		return
	}
	s.n++
	if s.n == streakWarn {
		s.log.Warn(s.what+" keeps failing: "+s.why, "error", err.Error(), "times", s.n)
		return
	}
	s.log.Debug(s.what+" failed", "error", err.Error())
}

const streakWarn = 3

// WatchSlot reads the slot now and every interval until ctx ends, handing
// every reading to polled.
func WatchSlot(ctx context.Context, dsn, slot string, every time.Duration, log *slog.Logger, polled func(SlotInfo)) {
	l := &lazyConn{dsn: dsn}
	defer l.close()
	fails := &streak{what: "reading the slot", why: "its lag and retained-WAL metrics and capture status keep their last values", log: log}
	for {
		var s SlotInfo
		err := l.do(ctx, func(ctx context.Context, c *pgx.Conn) (err error) {
			s, err = ReadSlot(ctx, c, slot)
			return err
		})
		if err == nil {
			polled(s)
		}
		if ctx.Err() == nil {
			fails.observe(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}
