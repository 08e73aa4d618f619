package pgcdc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/sethvargo/go-retry"
)

// Sink receives rows in WAL order and decides how far the slot may be
// confirmed. Implementations must be safe to call from the stream's
// goroutine while they deliver on their own.
type Sink interface {
	// Publish takes one row of the current transaction. It may block while
	// the sink is full; when ctx ends first it returns ctx's error and has
	// not taken the row (the stream offers it again). row.Event is the
	// relation's reused storage and its strings alias the received
	// message (proto.Clone would share them): valid only until Publish
	// returns; keep an encoding or a copy.
	Publish(ctx context.Context, row Decoded) error
	// Commit says every row of WAL before end has been offered: once they
	// are all delivered, the slot may be confirmed up to end.
	Commit(end pglogrepl.LSN)
	// Confirmed is the position up to which everything is delivered.
	Confirmed() pglogrepl.LSN
	// Drain waits until every row offered is delivered, or ctx ends.
	Drain(ctx context.Context) error
}

// ErrAbandon, as the cause of the stream's context cancellation, makes it
// stop without draining or confirming: the in-process equivalent of kill -9
// for tests (and what any crash looks like to the server).
var ErrAbandon = errors.New("abandoned without confirming")

// ErrSlotActive means another reader holds the slot: we are the standby.
var ErrSlotActive = errors.New("replication slot is active in another session")

// State is what the stream is doing, for /readyz and logs.
type State int32

const (
	StateStarting State = iota
	StateStreaming
	StateStandby
	StateReconnecting
	StateStopped
)

func (s State) String() string {
	switch s {
	case StateStarting:
		return "starting"
	case StateStreaming:
		return "streaming"
	case StateStandby:
		return "standby: another capture holds the replication slot"
	case StateReconnecting:
		return "reconnecting to PostgreSQL"
	case StateStopped:
		return "stopped"
	}
	return "unknown"
}

// Options configure a Stream.
type Options struct {
	DSN         string // the form database; replication=database is added
	Table       Table
	Slot        string
	Publication string
	HashFields  []string
	// StatusInterval bounds the time between standby status updates.
	StatusInterval time.Duration
	// StandbyPoll is how often a standby retries the slot.
	StandbyPoll time.Duration
	// DrainTimeout bounds waiting for in-flight rows on shutdown.
	DrainTimeout time.Duration
	Log          *slog.Logger
	// OnReconnect is called for every reconnect after a lost session.
	OnReconnect func()
	// OnCaptured is called for every row of the table read from WAL.
	OnCaptured func()
	// OnStatus is called with every position sent to the server.
	OnStatus func(pglogrepl.LSN)
	// OnState is called with every change of State.
	OnState func(State)
	// OnError is called with the error that ended a replication session
	// (not the standby's "slot is active", which is no error).
	OnError func(error)
}

// Stream reads committed INSERTs of one table from a logical slot.
type Stream struct {
	opt   Options
	state atomic.Int32
}

// New returns a Stream; Run starts it.
func New(opt Options) *Stream {
	if opt.StatusInterval <= 0 {
		opt.StatusInterval = 10 * time.Second
	}
	if opt.StandbyPoll <= 0 {
		opt.StandbyPoll = 2 * time.Second
	}
	if opt.DrainTimeout <= 0 {
		opt.DrainTimeout = 5 * time.Second
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	return &Stream{opt: opt}
}

// State reports what the stream is doing.
func (s *Stream) State() State { return State(s.state.Load()) }

func (s *Stream) setState(st State) {
	if State(s.state.Swap(int32(st))) != st && s.opt.OnState != nil {
		s.opt.OnState(st)
	}
}

// Run streams into sink until ctx ends, reconnecting with exponential
// backoff and jitter after a lost connection, and waiting as a hot standby
// while another session holds the slot. It returns nil on a graceful stop.
func (s *Stream) Run(ctx context.Context, sink Sink) error {
	log := s.opt.Log
	newBackoff := func() retry.Backoff {
		return retry.WithCappedDuration(10*time.Second,
			retry.WithJitterPercent(20, retry.NewExponential(250*time.Millisecond)))
	}
	backoff := newBackoff()
	standbyLogged := false
	for attempt := 1; ; attempt++ {
		streamed, err := s.session(ctx, sink)
		if ctx.Err() != nil {
			s.setState(StateStopped)
			if errors.Is(context.Cause(ctx), ErrAbandon) || !streamed {
				return nil // stopped before streaming: nothing was in flight
			}
			return err // nil after a clean drain and final status
		}
		var wait time.Duration
		switch {
		case errors.Is(err, ErrSlotActive):
			s.setState(StateStandby)
			if !standbyLogged {
				log.Info("standby: replication slot held by another capture; polling", "slot", s.opt.Slot, "error", err.Error())
				standbyLogged = true
			}
			wait = s.opt.StandbyPoll
			attempt = 0
		case errors.Is(err, ErrStartup):
			return err
		default:
			s.setState(StateReconnecting)
			if streamed {
				backoff, attempt = newBackoff(), 1
			}
			wait, _ = backoff.Next()
			log.Warn("replication session lost; reconnecting", "error", err.Error(), "attempt", attempt, "backoff", wait.String())
			if s.opt.OnError != nil {
				s.opt.OnError(err)
			}
			if s.opt.OnReconnect != nil {
				s.opt.OnReconnect()
			}
		}
		if !errors.Is(err, ErrSlotActive) {
			standbyLogged = false // a later standby phase is news again
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// session is one replication connection. streamed reports that it got as
// far as streaming (so the backoff starts over).
func (s *Stream) session(ctx context.Context, sink Sink) (streamed bool, err error) {
	cfg, err := pgconn.ParseConfig(s.opt.DSN)
	if err != nil {
		return false, fmt.Errorf("%w: DATABASE_URL: %v", ErrStartup, err)
	}
	cfg.RuntimeParams["replication"] = "database"
	pinSession(cfg.RuntimeParams)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgconn.ConnectConfig(cctx, cfg)
	cancel()
	if err != nil {
		return false, fmt.Errorf("connect for replication: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()

	// The slot's confirmed position is our floor: we never report less, and
	// a fresh sink starts from it.
	res, err := conn.Exec(ctx, "SELECT confirmed_flush_lsn, current_database(), coalesce(wal_status, '') FROM pg_replication_slots WHERE slot_name = "+quote(s.opt.Slot)).ReadAll()
	if err != nil {
		return false, fmt.Errorf("read slot %s: %w", s.opt.Slot, err)
	}
	if len(res) == 0 || len(res[0].Rows) == 0 {
		return false, fmt.Errorf("%w: replication slot %s does not exist (capture creates it at start-up)", ErrStartup, s.opt.Slot)
	}
	row := res[0].Rows[0]
	if row[0] != nil {
		if lsn, err := pglogrepl.ParseLSN(string(row[0])); err == nil {
			sink.Commit(lsn)
		}
	}
	if string(row[2]) == "lost" {
		return false, LostSlot(s.opt.Slot, sink.Confirmed())
	}
	db := string(row[1])
	pk, err := primaryKey(ctx, conn, s.opt.Table)
	if err != nil {
		return false, err
	}

	// Start at 0/0: the server resumes from the slot's confirmed_flush_lsn,
	// so everything after the last confirmation is sent again (and collapses
	// in JetStream by Nats-Msg-Id).
	err = pglogrepl.StartReplication(ctx, conn, s.opt.Slot, 0, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names " + quote(pgx.Identifier{s.opt.Publication}.Sanitize())},
	})
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "55006" { // object_in_use: "slot ... is active for PID n"
			return false, fmt.Errorf("%w: %s", ErrSlotActive, pgErr.Message)
		}
		return false, fmt.Errorf("start replication on slot %s: %w", s.opt.Slot, err)
	}
	s.setState(StateStreaming)
	s.opt.Log.Info("streaming", "slot", s.opt.Slot, "lsn", sink.Confirmed().String())
	r := newReader(s, conn, sink, db, pk)
	return true, slotPredatesPublication(r.loop(ctx), s.opt.Slot, s.opt.Publication)
}

// LostSlot is the start-up error of a slot PostgreSQL invalidated
// (max_slot_wal_keep_size): the WAL after its confirmed position is gone,
// so streaming can never resume; only a new slot and a backfill recover.
func LostSlot(slot string, confirmed pglogrepl.LSN) error {
	return fmt.Errorf("%w: replication slot %s was invalidated by PostgreSQL (wal_status lost: it kept more WAL than max_slot_wal_keep_size allows), "+
		"and rows committed after %s are no longer in the WAL: drop it (SELECT pg_drop_replication_slot(%s)), start capture again, which makes a new one, "+
		"then run capture backfill --since the day capture last confirmed (its rows already in FORMS collapse as duplicates)",
		ErrStartup, slot, confirmed, quote(slot))
}

// slotPredatesPublication: pgoutput reads the publication as it was when
// each transaction was written, so WAL written before the publication
// existed fails to decode ("publication … does not exist", 42704) on every
// try, for ever. Only an operator can end it: a start-up error that says how.
func slotPredatesPublication(err error, slot, publication string) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42704" || !strings.Contains(pgErr.Message, "publication") {
		return err
	}
	return fmt.Errorf("%w: replication slot %s is older than publication %s, and PostgreSQL cannot decode the WAL written before the publication existed (%s): "+
		"drop the slot (SELECT pg_drop_replication_slot(%s)) and start capture again, which makes a new one; then run capture backfill for the rows committed meanwhile",
		ErrStartup, slot, publication, pgErr.Message, quote(slot))
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// primaryKey is the table's primary key columns, from the catalogue (as a
// table scan reads them), for a table whose replica identity is not its
// primary key: a Relation message then marks every column (FULL), an
// index's (USING INDEX) or none (NOTHING) — a key that would leave the
// hash nothing (FULL: every row alike, dropped as duplicates) or differ
// from backfill's.
func primaryKey(ctx context.Context, conn *pgconn.PgConn, t Table) ([]string, error) {
	res, err := conn.Exec(ctx, `SELECT a.attname FROM pg_index i
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
		WHERE i.indrelid = to_regclass(`+quote(t.Ident())+`) AND i.indisprimary ORDER BY a.attnum`).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("read the primary key of %s: %w", t, err)
	}
	pk := []string{}
	for _, row := range res[0].Rows {
		pk = append(pk, string(row[0]))
	}
	return pk, nil
}
