package capture

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/pgcdc"
	"github.com/cowjacket/formjira/internal/stream"
	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

// cell is one value of the type test: its SQL literal and the Value kind
// it must arrive as ("" = its column's kind).
type cell struct{ lit, kind string }

// typeColumns are the columns of the type test's table: every built-in type
// family, each with a typical value, a special one and an extreme one
// (a fourth row holds NULL everywhere).
var typeColumns = []struct {
	name, typ, kind string
	vals            [3]cell
}{
	{"c Int2", "smallint", "integer", [3]cell{{"1", ""}, {"-32768", ""}, {"32767", ""}}},
	{"c Int4", "integer", "integer", [3]cell{{"42", ""}, {"-2147483648", ""}, {"2147483647", ""}}},
	{"c Int8", "bigint", "integer", [3]cell{{"9007199254740993", ""}, {"-9223372036854775808", ""}, {"9223372036854775807", ""}}},
	{"c Numeric", "numeric", "decimal", [3]cell{{"5540221908.50", ""}, {"'NaN'", ""}, {"1e400", ""}}},
	{"c Numeric Inf", "numeric", "decimal", [3]cell{{"'Infinity'", ""}, {"'-Infinity'", ""}, {"-0.000000000000000000001", ""}}},
	{"c Numeric(10,2)", "numeric(10,2)", "decimal", [3]cell{{"12.5", ""}, {"-0", ""}, {"99999999.99", ""}}},
	{"c Real", "real", "number", [3]cell{{"1.1", ""}, {"'NaN'", ""}, {"'-Infinity'", ""}}},
	{"c Double", "double precision", "number", [3]cell{{"1.5e-7", ""}, {"'-0'", ""}, {"1e308", ""}}},
	{"c Double Inf", "double precision", "number", [3]cell{{"'Infinity'", ""}, {"1234567.125", ""}, {"2.2250738585072014e-308", ""}}},
	{"c Bool", "boolean", "boolean", [3]cell{{"true", ""}, {"false", ""}, {"true", ""}}},
	{"c Text", "text", "text", [3]cell{{`'Sara "Curtis" \ é 😀'`, ""}, {"''", ""}, {`E'line 1\nline 2\t\x01' || repeat('x', 3000)`, ""}}},
	{"c Varchar", "varchar(20)", "text", [3]cell{{"'short'", ""}, {"''", ""}, {"'twenty chars exactly'", ""}}},
	{"c Char", "char(5)", "text", [3]cell{{"'ab'", ""}, {"''", ""}, {"'abcde'", ""}}},
	{"c \"char\"", `"char"`, "raw", [3]cell{{"'x'", ""}, {"''", ""}, {"'~'", ""}}},
	{"c Name", "name", "raw", [3]cell{{"'a name'", ""}, {"''", ""}, {"repeat('n', 63)", ""}}},
	{"c Date", "date", "date", [3]cell{{"'2025-10-28'", ""}, {"'infinity'", "raw"}, {"'0044-03-15 BC'", "raw"}}},
	{"c Date 2", "date", "date", [3]cell{{"'0001-01-01'", ""}, {"'-infinity'", "raw"}, {"'5874897-12-31'", "raw"}}},
	{"c Time", "time", "raw", [3]cell{{"'12:34:56.789'", ""}, {"'24:00:00'", ""}, {"'00:00:00'", ""}}},
	{"c TimeTZ", "timetz", "raw", [3]cell{{"'12:34:56+05:30'", ""}, {"'00:00:00-15:59'", ""}, {"'23:59:59.999999+15:59'", ""}}},
	{"c Timestamp", "timestamp", "timestamp", [3]cell{{"'2025-10-24 12:00:00.5'", ""}, {"'infinity'", "raw"}, {"'0001-01-01 00:00:00 BC'", "raw"}}},
	{"c Timestamp 2", "timestamp", "timestamp", [3]cell{{"'9999-12-31 23:59:59.999999'", ""}, {"'-infinity'", "raw"}, {"'10000-01-01 00:00:00'", "raw"}}},
	{"c TimestampTZ", "timestamptz", "timestamp", [3]cell{{"'2025-10-24 12:00:00.123456+02'", ""}, {"'-infinity'", "raw"}, {"'0001-01-01 00:30:00+01'", "raw"}}},
	{"c TimestampTZ 2", "timestamptz", "timestamp", [3]cell{{"'1883-11-18 12:00:00+00'", ""}, {"'infinity'", "raw"}, {"'294276-12-31 23:59:59+00'", "raw"}}},
	{"c Interval", "interval", "raw", [3]cell{{"'1 year 2 months 3 days 04:05:06.789'", ""}, {"'-178000000 years'", ""}, {"'0'", ""}}},
	{"c UUID", "uuid", "raw", [3]cell{{"'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", ""}, {"'00000000-0000-0000-0000-000000000000'", ""}, {"'ffffffff-ffff-ffff-ffff-ffffffffffff'", ""}}},
	{"c JSON", "json", "raw", [3]cell{{`'{"a": [1, 2.50, null], "b": "é"}'`, ""}, {"'[]'", ""}, {`'"\u0000 is not text"'`, ""}}},
	{"c JSONB", "jsonb", "raw", [3]cell{{`'{"b": 1, "a": [true, null, 1.50]}'`, ""}, {"'null'", ""}, {`'{"deep": {"er": {"est": "😀"}}}'`, ""}}},
	{"c Bytea", "bytea", "raw", [3]cell{{`'\xdeadbeef'`, ""}, {"''", ""}, {"decode(repeat('00ff', 500), 'hex')", ""}}},
	{"c Inet", "inet", "raw", [3]cell{{"'192.168.0.1/24'", ""}, {"'::1'", ""}, {"'2001:db8::ff00:42:8329/64'", ""}}},
	{"c CIDR", "cidr", "raw", [3]cell{{"'10.0.0.0/8'", ""}, {"'::/0'", ""}, {"'192.168.100.128/25'", ""}}},
	{"c MACAddr", "macaddr", "raw", [3]cell{{"'08:00:2b:01:02:03'", ""}, {"'00:00:00:00:00:00'", ""}, {"'ff:ff:ff:ff:ff:ff'", ""}}},
	{"c MACAddr8", "macaddr8", "raw", [3]cell{{"'08:00:2b:01:02:03:04:05'", ""}, {"'00:00:00:00:00:00:00:00'", ""}, {"'ff:ff:ff:ff:ff:ff:ff:ff'", ""}}},
	{"c Point", "point", "raw", [3]cell{{"'(1,2)'", ""}, {"'(NaN,Infinity)'", ""}, {"'(1e308,-1e-308)'", ""}}},
	{"c Line", "line", "raw", [3]cell{{"'{1,2,3}'", ""}, {"'{0,-1,0}'", ""}, {"'{1.5,-2.5,1e100}'", ""}}},
	{"c LSeg", "lseg", "raw", [3]cell{{"'[(0,0),(1,1)]'", ""}, {"'[(0,0),(0,0)]'", ""}, {"'[(-1e10,1e10),(1,-1)]'", ""}}},
	{"c Box", "box", "raw", [3]cell{{"'(1,1),(0,0)'", ""}, {"'(0,0),(0,0)'", ""}, {"'(1e10,1e10),(-1e10,-1e10)'", ""}}},
	{"c Path", "path", "raw", [3]cell{{"'[(0,0),(1,1),(2,0)]'", ""}, {"'((0,0),(1,1))'", ""}, {"'[(0,0)]'", ""}}},
	{"c Polygon", "polygon", "raw", [3]cell{{"'((0,0),(1,1),(1,0))'", ""}, {"'((0,0))'", ""}, {"'((-1.5,2.5),(3,4),(5,-6),(7,8))'", ""}}},
	{"c Circle", "circle", "raw", [3]cell{{"'<(0,0),1>'", ""}, {"'<(1.5,-2.5),0>'", ""}, {"'<(1e100,1e100),1e100>'", ""}}},
	{"c Int[]", "integer[]", "raw", [3]cell{{"'{1,2,NULL}'", ""}, {"'{}'", ""}, {"'[0:1]={7,8}'", ""}}},
	{"c Text[]", "text[]", "raw", [3]cell{{`'{"a b","c\"d",NULL,"","NULL"}'`, ""}, {"'{}'", ""}, {`ARRAY['é', E'\\', '{}', ',']`, ""}}},
	{"c Int[][]", "integer[][]", "raw", [3]cell{{"'{{1,2},{3,4}}'", ""}, {"'{{NULL}}'", ""}, {"'{{{1}}}'", ""}}},
	{"c Bool[]", "boolean[]", "raw", [3]cell{{"'{t,f}'", ""}, {"'{NULL}'", ""}, {"'{true,true}'", ""}}},
	{"c Date[]", "date[]", "raw", [3]cell{{"'{2025-01-01,infinity}'", ""}, {"'{0044-03-15 BC}'", ""}, {"'{-infinity}'", ""}}},
	{"c Numeric[]", "numeric[]", "raw", [3]cell{{"'{NaN,1.50,-Infinity}'", ""}, {"'{}'", ""}, {"ARRAY[1e100]", ""}}},
	{"c Mood", `"Sales Dept"."Mood"`, "raw", [3]cell{{"'happy'", ""}, {"'sad'", ""}, {`'with "quotes"'`, ""}}},
	{"c Posint", `"Sales Dept".posint`, "raw", [3]cell{{"5", ""}, {"1", ""}, {"2147483647", ""}}},
	{"c Pair", `"Sales Dept".pair`, "raw", [3]cell{{"ROW(1, 'a b')", ""}, {"ROW(NULL, NULL)", ""}, {`ROW(-1, 'quote " and , comma')`, ""}}},
	{"c TSVector", "tsvector", "raw", [3]cell{{"'a fat cat sat'", ""}, {"''", ""}, {"to_tsvector('english', 'The quick brown foxes jumped')", ""}}},
	{"c TSQuery", "tsquery", "raw", [3]cell{{"'fat & (rat | cat)'", ""}, {"'!x'", ""}, {"'a <-> b:*'", ""}}},
	{"c Money", "money", "raw", [3]cell{{"12.34", ""}, {"-0.01", ""}, {"92233720368547758.07", ""}}},
	{"c Bit", "bit(4)", "raw", [3]cell{{"B'1010'", ""}, {"B'0000'", ""}, {"B'1111'", ""}}},
	{"c VarBit", "bit varying", "raw", [3]cell{{"B'101'", ""}, {"B''", ""}, {"repeat('1', 1000)::varbit", ""}}},
	{"c Int4Range", "int4range", "raw", [3]cell{{"'[1,10)'", ""}, {"'empty'", ""}, {"'(,)'", ""}}},
	{"c Int8Range", "int8range", "raw", [3]cell{{"'[1,9223372036854775806]'", ""}, {"'empty'", ""}, {"'(,0]'", ""}}},
	{"c NumRange", "numrange", "raw", [3]cell{{"'(1.5,2.5]'", ""}, {"'empty'", ""}, {"'[-Infinity,Infinity]'", ""}}},
	{"c TSRange", "tsrange", "raw", [3]cell{{"'[2025-01-01 00:00,2025-02-01 00:00)'", ""}, {"'[-infinity,infinity]'", ""}, {"'(,)'", ""}}},
	{"c TSTZRange", "tstzrange", "raw", [3]cell{{"'[2025-01-01 00:00+02,2025-02-01 00:00+02)'", ""}, {"'empty'", ""}, {"'[0044-03-15 00:00+00 BC,)'", ""}}},
	{"c DateRange", "daterange", "raw", [3]cell{{"'[2025-01-01,infinity)'", ""}, {"'empty'", ""}, {"'[2025-01-01,2025-01-01]'", ""}}},
	{"c Int4Multirange", "int4multirange", "raw", [3]cell{{"'{[1,3), [5,7)}'", ""}, {"'{}'", ""}, {"'{(,)}'", ""}}},
	{"c PG_LSN", "pg_lsn", "raw", [3]cell{{"'0/16B3748'", ""}, {"'0/0'", ""}, {"'FFFFFFFF/FFFFFFFF'", ""}}},
	{"c OID", "oid", "raw", [3]cell{{"12345", ""}, {"0", ""}, {"4294967295", ""}}},
	{"c XID8", "xid8", "raw", [3]cell{{"'42'", ""}, {"'0'", ""}, {"'18446744073709551615'", ""}}},
	{"c JSONPath", "jsonpath", "raw", [3]cell{{`'$.a[*] ? (@ > 1)'`, ""}, {"'$'", ""}, {`'strict $."key with space"'`, ""}}},
	{"c TID", "tid", "raw", [3]cell{{"'(0,1)'", ""}, {"'(0,0)'", ""}, {"'(4294967295,65535)'", ""}}},
	{"c XML", "xml", "raw", [3]cell{{`'<a x="1">t</a>'`, ""}, {"''", ""}, {`'<?xml version="1.0"?><b>é</b>'`, ""}}},
}

const (
	typesSchema = "Sales Dept"
	typesTable  = "Order Items"
)

// Every value PostgreSQL can hold, of every built-in type family, on a
// table that is not the form (mixed-case, spaced schema, table and column
// names) captured by a least-privilege role, arrives in its event: typed
// when the kind holds it exactly, else PostgreSQL's own text (raw); each
// compared with PostgreSQL's text output of that value. None is a poison
// row; backfill of the same rows yields the same events (all duplicates),
// whatever output settings the role has.
func TestEveryTypeArrives(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	e := newEnv(t)
	ctx := context.Background()
	owner := e.Conn()
	cols := typeColumns
	if _, err := owner.Exec(ctx, "SELECT '<a/>'::xml"); err != nil {
		cols = cols[:len(cols)-1] // a server built without libxml has no xml
		t.Logf("xml unavailable (%v): not in the table", err)
	}
	defs := []string{`"Row ID" bigint PRIMARY KEY`}
	for _, c := range cols {
		defs = append(defs, pgx.Identifier{c.name}.Sanitize()+" "+c.typ)
	}
	table := pgx.Identifier{typesSchema, typesTable}.Sanitize()
	role := fmt.Sprintf("capture_types_%d", time.Now().UnixNano()%1e9)
	for _, q := range []string{
		`CREATE SCHEMA "Sales Dept"`,
		`CREATE TYPE "Sales Dept"."Mood" AS ENUM ('sad', 'ok', 'happy', 'with "quotes"')`,
		`CREATE DOMAIN "Sales Dept".posint AS integer CHECK (VALUE > 0)`,
		`CREATE TYPE "Sales Dept".pair AS (a integer, b text)`,
		"CREATE TABLE " + table + " (" + strings.Join(defs, ", ") + ")",
		// As deploy/postgres/02-capture-role.sql: the owner makes the
		// publication; the role may log in, replicate and read the table.
		"DROP PUBLICATION cowjacket", // 02-capture-role.sql's, of the form table
		"CREATE PUBLICATION cowjacket FOR TABLE " + table + " WITH (publish = 'insert')",
		"CREATE ROLE " + role + " LOGIN REPLICATION",
		// Output settings that would change every rendering: capture's
		// sessions must pin their own.
		"ALTER ROLE " + role + " SET DateStyle = 'SQL, DMY'",
		"ALTER ROLE " + role + " SET TimeZone = 'Asia/Kathmandu'",
		"ALTER ROLE " + role + " SET IntervalStyle = 'iso_8601'",
		"ALTER ROLE " + role + " SET extra_float_digits = -3",
		`GRANT USAGE ON SCHEMA "Sales Dept" TO ` + role,
		"GRANT SELECT ON " + table + " TO " + role,
	} {
		if _, err := owner.Exec(ctx, q); err != nil {
			t.Fatalf("%.80s: %v", q, err)
		}
	}
	t.Cleanup(func() { dropRole(t, e.DSN, role) })
	e.Vars["DATABASE_URL"] = strings.Replace(e.DSN, "postgres@", role+"@", 1)
	e.Vars["FORM_TABLE"] = `"Sales Dept"."Order Items"`
	e.Start()
	e.WaitStreaming(owner)

	for row := range 4 {
		names, vals := []string{`"Row ID"`}, []string{strconv.Itoa(row + 1)}
		for _, c := range cols {
			names = append(names, pgx.Identifier{c.name}.Sanitize())
			lit := "NULL"
			if row < 3 {
				lit = c.vals[row].lit
			}
			vals = append(vals, "("+lit+")::"+c.typ)
		}
		q := "INSERT INTO " + table + " (" + strings.Join(names, ", ") + ") VALUES (" + strings.Join(vals, ", ") + ")"
		if _, err := owner.Exec(ctx, q); err != nil {
			t.Fatalf("row %d: %v", row+1, err)
		}
	}
	js := e.JS()
	waitMsgs(t, js, stream.Forms, 4, 20*time.Second)
	if n := streamMsgs(ctx, js, stream.DLQ); n != 0 {
		t.Errorf("%d dead letters: a valid row must never be one", n)
	}

	// PostgreSQL's own text of every value: the text result format is each
	// type's output function, with the session settings capture pins.
	pgText := pgOutput(t, owner, table, len(cols)+1)
	for _, m := range readAll(t, js, stream.Forms) {
		ev := m.Ev
		src := ev.GetSource()
		if m.Hdr.Get("Nats-Msg-Id") != ev.GetHash() || src.GetSchema() != typesSchema || src.GetTable() != typesTable ||
			m.Subject != "forms.submitted.Sales_Dept.Order_Items" {
			t.Errorf("seq %d: subject %q, header id %q, source %s.%s", m.Seq, m.Subject, m.Hdr.Get("Nats-Msg-Id"), src.GetSchema(), src.GetTable())
		}
		pk := src.GetPrimaryKey()
		if len(pk) != 1 || pk[0].GetName() != "Row ID" {
			t.Fatalf("seq %d: primary key %v", m.Seq, pk)
		}
		row := int(pk[0].GetValue().GetInteger()) - 1
		want := pgText[row+1]
		if got := len(ev.GetColumns()); got != len(cols)+1 {
			t.Fatalf("row %d: %d columns, want %d", row+1, got, len(cols)+1)
		}
		for i, c := range cols {
			col := ev.GetColumns()[i+1]
			kind := c.kind
			if row < 3 && c.vals[row].kind != "" {
				kind = c.vals[row].kind
			}
			if row == 3 {
				kind = "null"
			}
			text, isNull := want[i+1], want[i+1] == nil
			if col.GetName() != c.name {
				t.Errorf("row %d: column %d is %q, want %q", row+1, i+1, col.GetName(), c.name)
			}
			if got := form.Kind(col.GetValue()); got != kind {
				t.Errorf("row %d %q (%s): kind %s, want %s (PostgreSQL: %q)", row+1, c.name, c.typ, got, kind, text)
				continue
			}
			if isNull != (kind == "null") {
				t.Errorf("row %d %q: PostgreSQL NULL = %v, event %v", row+1, c.name, isNull, col.GetValue())
				continue
			}
			if !isNull && !sameValue(col.GetValue(), string(text), c.typ) {
				t.Errorf("row %d %q (%s): event %v, PostgreSQL %q", row+1, c.name, c.typ, col.GetValue(), text)
			}
		}
	}

	// The same rows read by a table scan (backfill) are the same events.
	res := backfill(ctx, t, e)
	if res != (BackfillResult{Read: 4, Duplicates: 4}) {
		t.Errorf("backfill %+v, want 4 read, all 4 duplicates of the captured events", res)
	}
}

// sameValue says whether a typed or raw value is exactly PostgreSQL's text.
func sameValue(v *formsv1.Value, text, typ string) bool {
	switch k := v.GetKind().(type) {
	case *formsv1.Value_Text:
		return k.Text == text
	case *formsv1.Value_Raw:
		return k.Raw == text
	case *formsv1.Value_Decimal:
		return k.Decimal == text
	case *formsv1.Value_Date:
		return k.Date == text
	case *formsv1.Value_Integer:
		return strconv.FormatInt(k.Integer, 10) == text
	case *formsv1.Value_Boolean:
		return map[bool]string{true: "t", false: "f"}[k.Boolean] == text
	case *formsv1.Value_Number:
		f, err := strconv.ParseFloat(text, 64)
		return err == nil && (math.Float64bits(f) == math.Float64bits(k.Number) || math.IsNaN(f) && math.IsNaN(k.Number))
	case *formsv1.Value_Timestamp:
		s := k.Timestamp.AsTime().UTC().Format("2006-01-02 15:04:05.999999")
		if typ == "timestamptz" {
			s += "+00" // the session's TimeZone is UTC
		}
		return s == text
	}
	return false
}

// pgOutput reads every row of table in the text format, by "Row ID":
// row id → column values (nil for NULL), with capture's session settings.
func pgOutput(t *testing.T, c *pgx.Conn, table string, ncols int) map[int][][]byte {
	t.Helper()
	ctx := context.Background()
	for _, q := range []string{"SET DateStyle = 'ISO, MDY'", "SET IntervalStyle = postgres", "SET TimeZone = 'UTC'", "SET extra_float_digits = 1"} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	rr := c.PgConn().ExecParams(ctx, "SELECT * FROM "+table+` ORDER BY "Row ID"`, nil, nil, nil, nil)
	out := map[int][][]byte{}
	for rr.NextRow() {
		vals := rr.Values()
		if len(vals) != ncols {
			t.Fatalf("%d columns, want %d", len(vals), ncols)
		}
		row := make([][]byte, len(vals))
		for i, v := range vals {
			if v != nil {
				row[i] = append([]byte{}, v...)
			}
		}
		id, _ := strconv.Atoi(string(row[0]))
		out[id] = row
	}
	if _, err := rr.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

// dropRole drops a test role once its grants in the database are gone.
func dropRole(t *testing.T, dsn, role string) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if c, err := pgcdc.Connect(ctx, dsn); err == nil {
		_, _ = c.Exec(ctx, "DROP OWNED BY "+role)
		c.Close(ctx)
	}
	c, err := pg.Connect(ctx, "postgres")
	if err != nil {
		t.Error(err)
		return
	}
	defer c.Close(ctx)
	for { // its sessions end with the capture that used them
		_, err = c.Exec(ctx, "DROP ROLE IF EXISTS "+role)
		if err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Errorf("drop role %s: %v", role, err)
	}
}
