package pgcdc

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

// ScanOptions shape a table scan.
type ScanOptions struct {
	HashFields []string
	PageSize   int // rows per keyset page; default 500
	// SinceColumn and Since, when both set, limit the scan to rows whose
	// SinceColumn (a date) is on or after Since.
	SinceColumn string
	Since       time.Time
}

// Scan reads the rows already in a table in keyset pages over its
// one-column primary key, as the same Rows of text values pgoutput sends
// (each value in the text format, i.e. by the type's output function), so
// a row decodes to the same event, and hash, either way.
type Scan struct {
	conn  *pgx.Conn
	t     Table
	opt   ScanOptions
	rel   *Relation
	first string // the first page's query
	after string // a later page's: keys after $1
	db    string
	last  []byte // text of the last key read
	read  bool   // a row has been read: later pages start after last
	key   int    // index of the key column
}

// NewScan reads the table's columns and prepares the page query.
func NewScan(ctx context.Context, conn *pgx.Conn, t Table, opt ScanOptions) (*Scan, error) {
	if opt.PageSize <= 0 {
		opt.PageSize = 500
	}
	cols, err := readColumns(ctx, conn, t)
	if err != nil {
		return nil, err
	}
	var db string
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
		return nil, fmt.Errorf("read the database's name: %w", err)
	}
	s := &Scan{conn: conn, t: t, opt: opt, db: db, key: -1,
		rel: &Relation{Schema: t.Schema, Name: t.Name, Columns: cols, HashFields: opt.HashFields}}
	hasSince := false
	sel := make([]string, len(cols))
	for i, c := range cols {
		if c.Key {
			if s.key >= 0 {
				return nil, fmt.Errorf("table %s: backfill needs a one-column primary key", t)
			}
			s.key = i
		}
		hasSince = hasSince || c.Name == opt.SinceColumn
		sel[i] = pgx.Identifier{c.Name}.Sanitize()
	}
	if s.key < 0 {
		return nil, fmt.Errorf("table %s has no primary key: backfill pages over it", t)
	}
	if !opt.Since.IsZero() && !hasSince {
		return nil, fmt.Errorf("--since: table %s has no %s column", t, opt.SinceColumn)
	}
	keyIdent := pgx.Identifier{cols[s.key].Name}.Sanitize()
	query := func(after bool) string {
		var where []string
		if !opt.Since.IsZero() {
			where = append(where, pgx.Identifier{opt.SinceColumn}.Sanitize()+" >= $1::date")
		}
		if after {
			// The key's text is read by the key type's input function.
			where = append(where, keyIdent+" > $"+strconv.Itoa(len(where)+1))
		}
		q := "SELECT " + strings.Join(sel, ", ") + " FROM " + t.Ident()
		if len(where) > 0 {
			q += " WHERE " + strings.Join(where, " AND ")
		}
		return q + " ORDER BY " + keyIdent + " LIMIT " + strconv.Itoa(opt.PageSize)
	}
	s.first, s.after = query(false), query(true)
	return s, nil
}

// Relation is the scanned table's description.
func (s *Scan) Relation() *Relation { return s.rel }

// LastKey is the text of the last primary key read, for progress logs.
func (s *Scan) LastKey() string { return string(s.last) }

// Next reads the next page and hands each row, decoded, to emit, in key
// order; the event is emit's only while it runs. It returns the number of
// rows read: 0 at the end of the table.
func (s *Scan) Next(ctx context.Context, emit func(Decoded) error) (int, error) {
	var params [][]byte
	if !s.opt.Since.IsZero() {
		params = append(params, []byte(s.opt.Since.Format(time.DateOnly)))
	}
	q := s.first
	if s.read {
		q = s.after
		params = append(params, s.last)
	}
	// Text results: the output function's rendering, what pgoutput sends.
	rr := s.conn.PgConn().ExecParams(ctx, q, params, nil, nil, nil)
	n := 0
	row := make(Row, len(s.rel.Columns))
	for rr.NextRow() {
		vals := rr.Values()
		if len(vals) != len(row) {
			rr.Close()
			return n, fmt.Errorf("backfill page of %s: %d values for %d columns", s.t, len(vals), len(row))
		}
		for i, v := range vals {
			if v == nil {
				row[i] = Field{Kind: FieldNull}
			} else {
				row[i] = Field{Kind: FieldText, Data: v}
			}
		}
		s.last, s.read = append(s.last[:0], vals[s.key]...), true
		src := &formsv1.Source{Origin: "backfill", Database: s.db, Schema: s.t.Schema, Table: s.t.Name}
		n++
		if err := emit(s.rel.Decode(row, src, time.Now())); err != nil {
			rr.Close()
			return n, err
		}
	}
	if _, err := rr.Close(); err != nil {
		return n, fmt.Errorf("backfill page after key %q: %w", s.last, err)
	}
	return n, nil
}

// readColumns reads a table's columns and primary key from the catalogue:
// the columns pgoutput sends, so without generated ones (it leaves them
// out: "Generated columns are not replicated",
// https://www.postgresql.org/docs/15/logical-replication-restrictions.html),
// else a backfilled row would hash differently from the same row streamed.
func readColumns(ctx context.Context, conn *pgx.Conn, t Table) ([]Column, error) {
	rows, err := conn.Query(ctx, `SELECT a.attname, a.atttypid,
			EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid AND i.indisprimary AND a.attnum = ANY(i.indkey))
		FROM pg_attribute a
		WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
		ORDER BY a.attnum`, t.Ident())
	if err != nil {
		return nil, fmt.Errorf("read columns of %s: %w", t, err)
	}
	var cols []Column
	for rows.Next() {
		var name string
		var oid uint32
		var key bool
		if err := rows.Scan(&name, &oid, &key); err != nil {
			rows.Close()
			return nil, err
		}
		cols = append(cols, NewColumn(name, oid, key))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(cols) == 0 {
		return nil, startupErr("table %s does not exist: create it (deploy/postgres/01-schema.sql) or set FORM_TABLE", t)
	}
	return cols, nil
}
