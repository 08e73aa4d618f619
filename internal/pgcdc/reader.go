package pgcdc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"google.golang.org/protobuf/types/known/timestamppb"

	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

// reader is the state of one streaming session. The relation cache lives
// here, so every reconnect rebuilds it from the Relation messages that the
// server sends again before first use.
type reader struct {
	s         *Stream
	conn      *pgconn.PgConn
	sink      Sink
	db        string
	relations map[uint32]*Relation
	pk        []string // the table's primary key columns

	inTxn      bool
	src        formsv1.Source // the current transaction's, shared by its rows
	commitTime timestamppb.Timestamp
	row        Row // the last Insert's values (storage reused)
	lastSent   pglogrepl.LSN
	lastSentAt time.Time

	pctx      context.Context // see publishContext
	pcancel   context.CancelFunc
	pdeadline time.Time
	rdeadline time.Time // see armReceive
	now       time.Time // the clock, read after each receive and each publish
}

func newReader(s *Stream, conn *pgconn.PgConn, sink Sink, db string, pk []string) *reader {
	return &reader{s: s, conn: conn, sink: sink, db: db, relations: map[uint32]*Relation{}, pk: pk,
		src: formsv1.Source{Origin: "capture", Database: db, Slot: s.opt.Slot}}
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
	// Receives run without a context (pgconn would watch one per message);
	// a read deadline bounds them instead, and ending ctx expires it.
	stop := context.AfterFunc(ctx, func() { _ = r.conn.Conn().SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	defer func() { _ = r.conn.Conn().SetReadDeadline(time.Time{}) }()
	if err := r.sendStatus(); err != nil {
		return err
	}
	r.now = time.Now()
	for {
		if ctx.Err() != nil {
			return r.stop(ctx)
		}
		if r.statusDue(r.now) {
			if err := r.sendStatus(); err != nil {
				return err
			}
		}
		if err := r.armReceive(r.now); err != nil {
			return fmt.Errorf("receive: %w", err)
		}
		raw, err := r.conn.ReceiveMessage(context.Background())
		// One clock read per message (it dates the message's row) and one
		// per publish, which may wait: the status check after either is on
		// time (the clock costs here, BENCHMARKS.md).
		r.now = time.Now()
		if err != nil {
			if isTimeout(err) || ctx.Err() != nil {
				r.rdeadline = time.Time{}
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

// armReceive bounds receives by minStatusGap, so status updates go out on
// time. One deadline serves every message that arrives before it.
func (r *reader) armReceive(now time.Time) error {
	if !r.rdeadline.IsZero() && now.Before(r.rdeadline) {
		return nil
	}
	r.rdeadline = now.Add(minStatusGap)
	return r.conn.Conn().SetReadDeadline(r.rdeadline)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
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

// checkHashFields stops capture when the table, as the WAL now describes
// it, lacks a HASH_FIELDS column (renamed or dropped since start): rows
// would hash without it, and with none left all alike, collapsing as
// duplicates. The rows before are drained and confirmed first, so the
// restart with a new HASH_FIELDS begins at this version of the table.
func (r *reader) checkHashFields(rel *Relation) error {
	t := r.s.opt.Table
	if rel.Schema != t.Schema || rel.Name != t.Name || len(r.s.opt.HashFields) == 0 {
		return nil
	}
	cols := make([]string, len(rel.Columns))
	for i, c := range rel.Columns {
		cols[i] = c.Name
	}
	n, ok := firstMissing(cols, r.s.opt.HashFields)
	if ok {
		return nil
	}
	dctx, cancel := context.WithTimeout(context.Background(), r.s.opt.DrainTimeout)
	defer cancel()
	before := "the rows before are confirmed"
	if err := r.sink.Drain(dctx); err != nil || r.sendStatus() != nil {
		before = "rows before it, not yet confirmed, are read again under the old name"
	}
	fix := slices.Clone(r.s.opt.HashFields)
	fix[slices.Index(fix, n)] = n + "|new_name"
	return startupErr("HASH_FIELDS: column %q is no longer in %s as the WAL describes it from %s on (its columns: %s): "+
		"after a rename list both names, old first, so that hashes stay as they were (HASH_FIELDS=%s), and restart (%s)",
		n, t, r.src.GetCommitLsn(), strings.Join(cols, ", "), strings.Join(fix, ","), before)
}

func (r *reader) logical(ctx context.Context, wal []byte) error {
	if len(wal) == 0 {
		return fmt.Errorf("%w: empty", errMalformed)
	}
	switch pglogrepl.MessageType(wal[0]) {
	case pglogrepl.MessageTypeRelation:
		m, err := parseRelation(wal)
		if err != nil {
			return err
		}
		rel := relationOf(m, r.s.opt.HashFields, r.pk)
		if err := r.checkHashFields(rel); err != nil {
			return err
		}
		r.relations[m.RelationID] = rel
	case pglogrepl.MessageTypeBegin:
		b, err := parseBegin(wal)
		if err != nil {
			return err
		}
		r.inTxn = true
		// Per transaction, not per row: its position and time as the event
		// carries them.
		r.src.CommitLsn = lsnString(b.finalLSN)
		r.commitTime.Seconds, r.commitTime.Nanos = b.commitTime.Unix(), int32(b.commitTime.Nanosecond())
		r.src.Xid = b.xid
	case pglogrepl.MessageTypeCommit:
		end, err := parseCommit(wal)
		if err != nil {
			return err
		}
		r.inTxn = false
		r.sink.Commit(end)
	case pglogrepl.MessageTypeInsert:
		relID, row, err := parseInsert(wal, r.row)
		r.row = row
		if err != nil {
			return err
		}
		rel, ok := r.relations[relID]
		if !ok {
			return fmt.Errorf("insert for unknown relation %d", relID)
		}
		if rel.Schema != r.s.opt.Table.Schema || rel.Name != r.s.opt.Table.Name {
			return nil
		}
		return r.insert(ctx, rel, row)
	default:
		// Update, Delete, Truncate (the publication is INSERT-only anyway),
		// Type, Origin, and logical decoding messages such as our heartbeat.
	}
	return nil
}

func (r *reader) insert(ctx context.Context, rel *Relation, row Row) error {
	r.src.Schema, r.src.Table = rel.Schema, rel.Name
	r.src.CommitTime = &r.commitTime
	dec := rel.Decode(row, &r.src, r.now)
	if r.s.opt.OnCaptured != nil {
		r.s.opt.OnCaptured()
	}
	for {
		// A full sink must not silence us: keep answering the server with
		// status updates, or wal_sender_timeout would end the session.
		err := r.sink.Publish(r.publishContext(ctx, r.now), dec)
		r.now = time.Now()
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
func (r *reader) publishContext(ctx context.Context, now time.Time) context.Context {
	if r.pctx == nil || r.pdeadline.Sub(now) < r.s.opt.StatusInterval/4 {
		r.dropContexts()
		r.pdeadline = now.Add(r.s.opt.StatusInterval / 2)
		r.pctx, r.pcancel = context.WithDeadline(ctx, r.pdeadline)
	}
	return r.pctx
}

func (r *reader) dropContexts() {
	if r.pcancel != nil {
		r.pcancel()
	}
	r.pctx, r.pcancel = nil, nil
}
