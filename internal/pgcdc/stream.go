package pgcdc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/sethvargo/go-retry"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Sink receives rows in WAL order and decides how far the slot may be
// confirmed. Implementations must be safe to call from the stream's
// goroutine while they deliver on their own.
type Sink interface {
	// Publish takes one row of the current transaction. It may block while
	// the sink is full; when ctx ends first it returns ctx's error and has
	// not taken the row (the stream offers it again).
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

func (s *Stream) setState(st State) { s.state.Store(int32(st)) }

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
			if errors.Is(context.Cause(ctx), ErrAbandon) {
				return nil
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
	res, err := conn.Exec(ctx, "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = "+quote(s.opt.Slot)).ReadAll()
	if err != nil {
		return false, fmt.Errorf("read slot %s: %w", s.opt.Slot, err)
	}
	if len(res) == 0 || len(res[0].Rows) == 0 {
		return false, fmt.Errorf("%w: replication slot %s does not exist (capture creates it at start-up)", ErrStartup, s.opt.Slot)
	}
	if v := res[0].Rows[0][0]; v != nil {
		if lsn, err := pglogrepl.ParseLSN(string(v)); err == nil {
			sink.Commit(lsn)
		}
	}

	// Start at 0/0: the server resumes from the slot's confirmed_flush_lsn,
	// so everything after the last confirmation is sent again (and collapses
	// in JetStream by Nats-Msg-Id).
	err = pglogrepl.StartReplication(ctx, conn, s.opt.Slot, 0, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names " + quote(s.opt.Publication)},
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
	r := &reader{s: s, conn: conn, sink: sink, relations: map[uint32]*pglogrepl.RelationMessage{}, db: cfg.Database}
	return true, r.loop(ctx)
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// reader is the state of one streaming session. The relation cache lives
// here, so every reconnect rebuilds it from the Relation messages that the
// server sends again before first use.
type reader struct {
	s         *Stream
	conn      *pgconn.PgConn
	sink      Sink
	db        string
	relations map[uint32]*pglogrepl.RelationMessage

	inTxn      bool
	begin      pglogrepl.BeginMessage
	lastSent   pglogrepl.LSN
	lastSentAt time.Time

	pctx      context.Context // see publishContext
	pcancel   context.CancelFunc
	pdeadline time.Time
	rctx      context.Context // see receiveContext
	rcancel   context.CancelFunc
	rdeadline time.Time
}

// minStatusGap keeps a busy stream from sending a status per row while still
// reporting progress promptly.
const minStatusGap = 200 * time.Millisecond

func (r *reader) sendStatus() error {
	c := r.sink.Confirmed()
	if c == 0 {
		return nil // pglogrepl would copy write into flush: never report 0/0
	}
	// All three positions are the delivered position: reporting a write
	// position ahead of it would stop the server's keepalive pings that let
	// an idle stream advance (walsender pings only while write < sent).
	err := pglogrepl.SendStandbyStatusUpdate(context.Background(), r.conn, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: c, WALFlushPosition: c, WALApplyPosition: c, ClientTime: time.Now(),
	})
	if err != nil {
		return fmt.Errorf("send standby status: %w", err)
	}
	if c != r.lastSent {
		r.s.opt.Log.Debug("confirmed", "lsn", c.String())
	}
	r.lastSent, r.lastSentAt = c, time.Now()
	if r.s.opt.OnStatus != nil {
		r.s.opt.OnStatus(c)
	}
	return nil
}

func (r *reader) statusDue(now time.Time) bool {
	return now.Sub(r.lastSentAt) >= r.s.opt.StatusInterval ||
		r.sink.Confirmed() != r.lastSent && now.Sub(r.lastSentAt) >= minStatusGap
}

func (r *reader) loop(ctx context.Context) error {
	defer r.dropContexts()
	defer r.dropReceive()
	if err := r.sendStatus(); err != nil {
		return err
	}
	for {
		if ctx.Err() != nil {
			return r.stop(ctx)
		}
		now := time.Now()
		if r.statusDue(now) {
			if err := r.sendStatus(); err != nil {
				return err
			}
		}
		raw, err := r.conn.ReceiveMessage(r.receiveContext(ctx, now))
		if err != nil {
			if pgconn.Timeout(err) || ctx.Err() != nil {
				r.dropReceive()
				continue
			}
			return fmt.Errorf("receive: %w", err)
		}
		switch m := raw.(type) {
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("replication: %w", pgconn.ErrorResponseToPgError(m))
		case *pgproto3.CopyData:
			if err := r.handle(ctx, m.Data); err != nil {
				if ctx.Err() != nil {
					return r.stop(ctx)
				}
				return err
			}
		case *pgproto3.CopyDone:
			return errors.New("server ended replication (CopyDone)")
		}
	}
}

// stop ends the session on shutdown: unless abandoned, wait (bounded) for
// in-flight rows and send the final status so a restart re-reads nothing
// already delivered.
func (r *reader) stop(ctx context.Context) error {
	if errors.Is(context.Cause(ctx), ErrAbandon) {
		return nil
	}
	dctx, cancel := context.WithTimeout(context.Background(), r.s.opt.DrainTimeout)
	defer cancel()
	derr := r.sink.Drain(dctx)
	if derr != nil {
		r.s.opt.Log.Warn("shutdown: rows still in flight are left for redelivery", "error", derr.Error(), "lsn", r.sink.Confirmed().String())
	}
	if err := r.sendStatus(); err != nil {
		return err
	}
	r.s.opt.Log.Info("stopped", "lsn", r.sink.Confirmed().String())
	return nil
}

func (r *reader) handle(ctx context.Context, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	switch data[0] {
	case pglogrepl.PrimaryKeepaliveMessageByteID:
		pkm, err := pglogrepl.ParsePrimaryKeepaliveMessage(data[1:])
		if err != nil {
			return fmt.Errorf("parse keepalive: %w", err)
		}
		if !r.inTxn {
			// Everything before the server's position has been sent to us
			// (or skipped as irrelevant): once it is delivered the slot may
			// move there, so traffic on other tables does not pin WAL.
			r.sink.Commit(pkm.ServerWALEnd)
		}
		if pkm.ReplyRequested {
			return r.sendStatus()
		}
	case pglogrepl.XLogDataByteID:
		xld, err := pglogrepl.ParseXLogData(data[1:])
		if err != nil {
			return fmt.Errorf("parse XLogData: %w", err)
		}
		return r.logical(ctx, xld.WALData)
	}
	return nil
}

// parse is pglogrepl.Parse made safe: its decoders index without bounds
// checks, and a corrupt message must be an error, not a crash.
func parse(b []byte) (m pglogrepl.Message, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("malformed pgoutput message: %v", p)
		}
	}()
	if len(b) == 0 {
		return nil, errors.New("empty pgoutput message")
	}
	switch pglogrepl.MessageType(b[0]) {
	case pglogrepl.MessageTypeInsert:
		if err := checkInsert(b); err != nil {
			return nil, err
		}
	case pglogrepl.MessageTypeRelation, pglogrepl.MessageTypeBegin, pglogrepl.MessageTypeCommit:
	default:
		// Not needed (updates, deletes, truncates, types, origins, logical
		// messages): skip decoding what is ignored anyway.
		return ignored{}, nil
	}
	return pglogrepl.Parse(b)
}

type ignored struct{ pglogrepl.Message }

// checkInsert verifies the value lengths of an Insert message against its
// size before pglogrepl allocates them: a corrupt length must not become a
// multi-gigabyte allocation.
func checkInsert(b []byte) error {
	bad := errors.New("malformed pgoutput insert message")
	if len(b) < 8 {
		return bad
	}
	p := 6 // 'I', relation id, 'N'
	n := int(binary.BigEndian.Uint16(b[p:]))
	p += 2
	for range n {
		if p >= len(b) {
			return bad
		}
		kind := b[p]
		p++
		if kind == pglogrepl.TupleDataTypeText || kind == pglogrepl.TupleDataTypeBinary {
			if p+4 > len(b) {
				return bad
			}
			l := int(binary.BigEndian.Uint32(b[p:]))
			p += 4
			if l > len(b)-p {
				return bad
			}
			p += l
		}
	}
	return nil
}

func (r *reader) logical(ctx context.Context, wal []byte) error {
	msg, err := parse(wal)
	if err != nil {
		return err
	}
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		r.relations[m.RelationID] = m
	case *pglogrepl.BeginMessage:
		r.inTxn, r.begin = true, *m
	case *pglogrepl.CommitMessage:
		r.inTxn = false
		r.sink.Commit(m.TransactionEndLSN)
	case *pglogrepl.InsertMessage:
		rel, ok := r.relations[m.RelationID]
		if !ok {
			return fmt.Errorf("insert for unknown relation %d", m.RelationID)
		}
		if rel.Namespace != r.s.opt.Table.Schema || rel.RelationName != r.s.opt.Table.Name {
			return nil
		}
		return r.insert(ctx, rel, m.Tuple)
	default:
		// Update, Delete, Truncate (the publication is INSERT-only anyway),
		// Type, Origin, and logical decoding messages such as our heartbeat.
	}
	return nil
}

func (r *reader) insert(ctx context.Context, rel *pglogrepl.RelationMessage, tuple *pglogrepl.TupleData) error {
	src := &formsv1.Source{
		Origin:     "capture",
		Database:   r.db,
		Schema:     rel.Namespace,
		Table:      rel.RelationName,
		CommitLsn:  r.begin.FinalLSN.String(),
		CommitTime: timestamppb.New(r.begin.CommitTime),
		Xid:        r.begin.Xid,
		Slot:       r.s.opt.Slot,
	}
	row := DecodeTuple(rel, tuple, r.s.opt.HashFields, src, time.Now())
	if r.s.opt.OnCaptured != nil {
		r.s.opt.OnCaptured()
	}
	for {
		// A full sink must not silence us: keep answering the server with
		// status updates, or wal_sender_timeout would end the session.
		err := r.sink.Publish(r.publishContext(ctx), row)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		r.dropContexts()
		if err := r.sendStatus(); err != nil {
			return err
		}
	}
}

// publishContext bounds how long one Publish may block (half the status
// interval). It is shared by the rows that follow while at least a quarter
// of the interval is left, rather than made per row.
func (r *reader) publishContext(ctx context.Context) context.Context {
	now := time.Now()
	if r.pctx == nil || r.pdeadline.Sub(now) < r.s.opt.StatusInterval/4 {
		r.dropContexts()
		r.pdeadline = now.Add(r.s.opt.StatusInterval / 2)
		r.pctx, r.pcancel = context.WithDeadline(ctx, r.pdeadline)
	}
	return r.pctx
}

// receiveContext bounds a receive by minStatusGap, so status updates go out
// on time. One deadline serves every message that arrives before it: a
// context per message was a measurable share of the per-row cost.
func (r *reader) receiveContext(ctx context.Context, now time.Time) context.Context {
	if r.rctx == nil || !now.Before(r.rdeadline) {
		r.dropReceive()
		r.rdeadline = now.Add(minStatusGap)
		r.rctx, r.rcancel = context.WithDeadline(ctx, r.rdeadline)
	}
	return r.rctx
}

func (r *reader) dropReceive() {
	if r.rcancel != nil {
		r.rcancel()
	}
	r.rctx, r.rcancel = nil, nil
}

func (r *reader) dropContexts() {
	if r.pcancel != nil {
		r.pcancel()
	}
	r.pctx, r.pcancel = nil, nil
}
