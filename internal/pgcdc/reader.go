package pgcdc

import (
	"context"
	"errors"
	"fmt"
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

func (r *reader) logical(ctx context.Context, wal []byte) error {
	msg, err := parse(wal)
	if err != nil {
		return err
	}
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		r.relations[m.RelationID] = relationOf(m, r.s.opt.HashFields)
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
		if rel.Schema != r.s.opt.Table.Schema || rel.Name != r.s.opt.Table.Name {
			return nil
		}
		return r.insert(ctx, rel, rowOf(m.Tuple))
	default:
		// Update, Delete, Truncate (the publication is INSERT-only anyway),
		// Type, Origin, and logical decoding messages such as our heartbeat.
	}
	return nil
}

func (r *reader) insert(ctx context.Context, rel *Relation, row Row) error {
	src := &formsv1.Source{
		Origin:     "capture",
		Database:   r.db,
		Schema:     rel.Schema,
		Table:      rel.Name,
		CommitLsn:  r.begin.FinalLSN.String(),
		CommitTime: timestamppb.New(r.begin.CommitTime),
		Xid:        r.begin.Xid,
		Slot:       r.s.opt.Slot,
	}
	dec := rel.Decode(row, src, time.Now())
	if r.s.opt.OnCaptured != nil {
		r.s.opt.OnCaptured()
	}
	for {
		// A full sink must not silence us: keep answering the server with
		// status updates, or wal_sender_timeout would end the session.
		err := r.sink.Publish(r.publishContext(ctx), dec)
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
