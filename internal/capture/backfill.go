package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/config"
	"github.com/cowjacket/formjira/internal/pgcdc"
	"github.com/cowjacket/formjira/internal/stream"
	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

// backfillPage is the keyset page size: big enough to keep JetStream busy,
// small enough that a page is a short query.
const backfillPage = 500

// BackfillResult counts what a backfill did.
type BackfillResult struct {
	Read, Published, Duplicates, DeadLettered int
}

type tableColumn struct {
	name string
	oid  uint32
	pk   bool
}

// Backfill publishes the rows already in the table, in keyset pages over
// the primary key, through the same conversion as the replication stream
// (each value read as col::text, which is what pgoutput sends), so a row
// gets the same hash either way and JetStream collapses the second copy.
func Backfill(ctx context.Context, cfg Config, since time.Time, log *slog.Logger) (BackfillResult, error) {
	var res BackfillResult
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.Connect(cctx, cfg.DatabaseURL)
	cancel()
	if err != nil {
		return res, fmt.Errorf("connect to %s: %w", config.Redact(cfg.DatabaseURL), err)
	}
	defer conn.Close(context.Background())

	cols, err := readColumns(ctx, conn, cfg.Table)
	if err != nil {
		return res, err
	}
	if err := pgcdc.CheckColumns(ctx, conn, cfg.Table, "HASH_FIELDS", cfg.HashFields); err != nil {
		return res, err
	}
	var pk *tableColumn
	hasCreatedAt := false
	for i := range cols {
		if cols[i].pk {
			if pk != nil {
				return res, fmt.Errorf("table %s: backfill needs a one-column primary key", cfg.Table)
			}
			pk = &cols[i]
		}
		hasCreatedAt = hasCreatedAt || cols[i].name == "createdat"
	}
	if pk == nil {
		return res, fmt.Errorf("table %s has no primary key: backfill pages over it", cfg.Table)
	}
	if !since.IsZero() && !hasCreatedAt {
		return res, fmt.Errorf("--since: table %s has no createdat column", cfg.Table)
	}

	nc, js, err := connectNATS(ctx, cfg, log)
	if err != nil {
		return res, err
	}
	defer nc.Close()
	p := newPublisher(js, stream.Subject(cfg.Table.Schema, cfg.Table.Name), int(nc.MaxPayload()), backfillPage, cfg.AckTimeout, log, newMetrics(nil))

	rel := &pglogrepl.RelationMessage{Namespace: cfg.Table.Schema, RelationName: cfg.Table.Name}
	sel := make([]string, 0, len(cols)+1)
	sel = append(sel, pgx.Identifier{pk.name}.Sanitize())
	for _, c := range cols {
		flags := uint8(0)
		if c.pk {
			flags = 1
		}
		rel.Columns = append(rel.Columns, &pglogrepl.RelationMessageColumn{Flags: flags, Name: c.name, DataType: c.oid})
		sel = append(sel, pgx.Identifier{c.name}.Sanitize()+"::text")
	}
	pkIdent := pgx.Identifier{pk.name}.Sanitize()
	var last any
	for {
		var where []string
		var args []any
		if last != nil {
			args = append(args, last)
			where = append(where, fmt.Sprintf("%s.%s > $%d", cfg.Table.Ident(), pkIdent, len(args)))
		}
		if !since.IsZero() {
			args = append(args, since.Format(time.DateOnly))
			where = append(where, fmt.Sprintf("createdat >= $%d::date", len(args)))
		}
		q := "SELECT " + strings.Join(sel, ", ") + " FROM " + cfg.Table.Ident()
		if len(where) > 0 {
			q += " WHERE " + strings.Join(where, " AND ")
		}
		q += fmt.Sprintf(" ORDER BY 1 LIMIT %d", backfillPage) // 1: the key, also selected as text
		rows, err := conn.Query(ctx, q, args...)
		if err != nil {
			return res, fmt.Errorf("backfill page after %v: %w", last, err)
		}
		var page []pgcdc.Decoded
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				rows.Close()
				return res, err
			}
			last = vals[0]
			tuple := &pglogrepl.TupleData{}
			for _, v := range vals[1:] {
				tc := &pglogrepl.TupleDataColumn{DataType: pglogrepl.TupleDataTypeNull}
				if s, ok := v.(string); ok {
					tc.DataType, tc.Data = pglogrepl.TupleDataTypeText, []byte(s)
				}
				tuple.Columns = append(tuple.Columns, tc)
			}
			src := &formsv1.Source{Origin: "backfill", Database: conn.Config().Database, Schema: cfg.Table.Schema, Table: cfg.Table.Name}
			page = append(page, pgcdc.DecodeTuple(rel, tuple, cfg.HashFields, src, time.Now()))
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return res, err
		}
		if len(page) == 0 {
			return res, nil
		}
		if err := p.publishSync(ctx, page, &res); err != nil {
			return res, err
		}
		log.Info("backfill page published", "rows", len(page), "last_key", fmt.Sprint(last))
	}
}

func readColumns(ctx context.Context, conn *pgx.Conn, t pgcdc.Table) ([]tableColumn, error) {
	rows, err := conn.Query(ctx, `SELECT a.attname, a.atttypid,
			EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid AND i.indisprimary AND a.attnum = ANY(i.indkey))
		FROM pg_attribute a
		WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY a.attnum`, t.Ident())
	if err != nil {
		return nil, fmt.Errorf("read columns of %s: %w", t, err)
	}
	var cols []tableColumn
	for rows.Next() {
		var c tableColumn
		if err := rows.Scan(&c.name, &c.oid, &c.pk); err != nil {
			rows.Close()
			return nil, err
		}
		cols = append(cols, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("%w: table %s does not exist: create it (forms/schema.sql) or set FORM_TABLE", pgcdc.ErrStartup, t)
	}
	return cols, nil
}

// publishSync publishes a page asynchronously and waits for every
// acknowledgement, re-publishing a failed one (same Nats-Msg-Id) until
// JetStream takes it.
func (p *publisher) publishSync(ctx context.Context, page []pgcdc.Decoded, res *BackfillResult) error {
	type pending struct {
		msg  *nats.Msg
		dead string
		fut  jetstream.PubAckFuture
		err  error
	}
	all := make([]pending, len(page))
	for i, row := range page {
		msg, dead := p.message(row)
		all[i] = pending{msg: msg, dead: dead}
		all[i].fut, all[i].err = p.js.PublishMsgAsync(msg)
	}
	for _, pe := range all {
		res.Read++
		e := &entry{msg: pe.msg, fut: pe.fut, err: pe.err}
		ack, err := p.await(ctx, e)
		for attempt := 2; err != nil; attempt++ {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			p.log.Warn("backfill publish failed; retrying", "hash", pe.msg.Header.Get(stream.HeaderHash), "attempt", attempt, "error", err.Error())
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(min(p.retryPause*time.Duration(attempt-1), 2*time.Second)):
			}
			actx, cancel := context.WithTimeout(ctx, p.ackTimeout)
			ack, err = p.js.PublishMsg(actx, pe.msg)
			cancel()
			if errors.Is(err, context.Canceled) && ctx.Err() != nil {
				return ctx.Err()
			}
		}
		switch {
		case pe.dead != "":
			res.DeadLettered++
		case ack.Duplicate:
			res.Duplicates++
		default:
			res.Published++
		}
	}
	return nil
}
