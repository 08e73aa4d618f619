package stream

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

// errJSON makes appendJSON give up on an event it cannot encode exactly as
// protojson would accept it (invalid UTF-8, a timestamp out of range);
// AppendEvent then uses protojson itself, which reports the problem.
var errJSON = errors.New("event needs protojson")

// appendJSON appends ev as protojson with proto field names (minus
// protojson's deliberately random spacing) to dst. It is capture's hot path:
// protojson's reflection made encoding the largest cost per row (see
// BENCHMARKS.md). The tests hold it to protojson: same message after
// protojson.Unmarshal, same JSON value, on samples, edge cases and
// generated events of every kind.
func appendJSON(dst []byte, ev *formsv1.FormSubmission) ([]byte, error) {
	return (*Encoder)(nil).appendJSON(dst, ev)
}

// Encoder is AppendEvent with memory: it keeps the encoded form of what
// repeats from one event of a table to the next (each column's name and
// type, the hash fields) and reuses it while an event carries the same
// strings. The output is AppendEvent's. It is not safe for concurrent use.
type Encoder struct {
	cols       []colCache
	fields     []string
	fieldsJSON []byte
}

type colCache struct {
	name, typ string
	prefix    []byte // {"name":…,"pg_type":…
}

// Append is AppendEvent.
func (enc *Encoder) Append(dst []byte, ev *formsv1.FormSubmission) ([]byte, error) {
	b, err := enc.appendJSON(dst, ev)
	if err == nil {
		return b, nil
	}
	return AppendEvent(dst, ev) // says what is wrong
}

func (enc *Encoder) appendJSON(dst []byte, ev *formsv1.FormSubmission) ([]byte, error) {
	e := jsonEnc{b: dst, c: enc}
	e.open()
	if v := ev.GetSchemaVersion(); v != 0 {
		e.key("schema_version")
		e.b = strconv.AppendUint(e.b, uint64(v), 10)
	}
	e.str("hash", ev.GetHash())
	if fs := ev.GetHashFields(); len(fs) > 0 {
		e.key("hash_fields")
		e.hashFields(fs)
	}
	e.columns("columns", ev.GetColumns(), true)
	if s := ev.GetSource(); s != nil {
		e.key("source")
		e.open()
		e.str("origin", s.GetOrigin())
		e.str("database", s.GetDatabase())
		e.str("schema", s.GetSchema())
		e.str("table", s.GetTable())
		e.columns("primary_key", s.GetPrimaryKey(), false)
		e.str("commit_lsn", s.GetCommitLsn())
		e.timestamp("commit_time", s.GetCommitTime())
		if x := s.GetXid(); x != 0 {
			e.key("xid")
			e.b = strconv.AppendUint(e.b, uint64(x), 10)
		}
		e.str("slot", s.GetSlot())
		e.close()
	}
	e.timestamp("captured_at", ev.GetCapturedAt())
	e.close()
	if e.err != nil {
		return dst, e.err
	}
	return e.b, nil
}

type jsonEnc struct {
	b     []byte
	first bool // no field written yet in the current object
	err   error
	c     *Encoder // nil: no memory
}

func (e *jsonEnc) hashFields(fs []string) {
	if c := e.c; c != nil && slices.Equal(fs, c.fields) {
		e.b = append(e.b, c.fieldsJSON...)
		return
	}
	start := len(e.b)
	e.b = append(e.b, '[')
	for i, f := range fs {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		e.quote(f)
	}
	e.b = append(e.b, ']')
	if c := e.c; c != nil && e.err == nil {
		c.fields = append(c.fields[:0], fs...)
		c.fieldsJSON = append(c.fieldsJSON[:0], e.b[start:]...)
	}
}

// column writes a column's name and type (its object left open), from the
// encoder's memory when it has them.
func (e *jsonEnc) column(i int, c *formsv1.Column) {
	name, typ := c.GetName(), c.GetPgType()
	if e.c == nil || i < 0 {
		e.open()
		e.str("name", name)
		e.str("pg_type", typ)
		return
	}
	for len(e.c.cols) <= i {
		e.c.cols = append(e.c.cols, colCache{})
	}
	cc := &e.c.cols[i]
	if cc.prefix == nil || cc.name != name || cc.typ != typ {
		start := len(e.b)
		e.open()
		e.str("name", name)
		e.str("pg_type", typ)
		if e.err != nil {
			return
		}
		cc.name, cc.typ, cc.prefix = name, typ, append(cc.prefix[:0], e.b[start:]...)
		return
	}
	e.b = append(e.b, cc.prefix...)
	e.first = name == "" && typ == ""
}

func (e *jsonEnc) open()  { e.b = append(e.b, '{'); e.first = true }
func (e *jsonEnc) close() { e.b = append(e.b, '}'); e.first = false }

func (e *jsonEnc) key(k string) {
	if !e.first {
		e.b = append(e.b, ',')
	}
	e.first = false
	e.b = append(e.b, '"')
	e.b = append(e.b, k...)
	e.b = append(e.b, '"', ':')
}

// str writes a proto3 string field: omitted when empty, as protojson does.
func (e *jsonEnc) str(k, v string) {
	if v == "" {
		return
	}
	e.key(k)
	e.quote(v)
}

// columns writes a repeated Column field; remember says whether the
// encoder's memory serves it (the event's columns, not its primary key).
func (e *jsonEnc) columns(k string, cols []*formsv1.Column, remember bool) {
	if len(cols) == 0 {
		return
	}
	e.key(k)
	e.b = append(e.b, '[')
	for i, c := range cols {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		if !remember {
			i = -1
		}
		e.column(i, c)
		if v := c.GetValue(); v != nil {
			e.key("value")
			e.value(v)
		}
		e.close()
	}
	e.b = append(e.b, ']')
}

// value writes a Value: a set oneof member is written even when it holds
// its zero value (it has presence), an unset oneof is {}.
func (e *jsonEnc) value(v *formsv1.Value) {
	e.open()
	switch k := v.GetKind().(type) {
	case *formsv1.Value_Null:
		e.key("null")
		e.b = strconv.AppendBool(e.b, k.Null)
	case *formsv1.Value_Text:
		e.key("text")
		e.quote(k.Text)
	case *formsv1.Value_Integer:
		e.key("integer") // int64 is a JSON string in protojson
		e.b = append(e.b, '"')
		e.b = strconv.AppendInt(e.b, k.Integer, 10)
		e.b = append(e.b, '"')
	case *formsv1.Value_Number:
		e.key("number")
		e.float(k.Number)
	case *formsv1.Value_Decimal:
		e.key("decimal")
		e.quote(k.Decimal)
	case *formsv1.Value_Boolean:
		e.key("boolean")
		e.b = strconv.AppendBool(e.b, k.Boolean)
	case *formsv1.Value_Date:
		e.key("date")
		e.quote(k.Date)
	case *formsv1.Value_Timestamp:
		e.key("timestamp")
		if k.Timestamp == nil {
			e.b = append(e.b, '{', '}') // an empty Timestamp message is not the epoch
			break
		}
		e.ts(k.Timestamp)
	case *formsv1.Value_Raw:
		e.key("raw")
		e.quote(k.Raw)
	}
	e.close()
}

func (e *jsonEnc) timestamp(k string, t *timestamppb.Timestamp) {
	if t == nil {
		return
	}
	e.key(k)
	e.ts(t)
}

// ts is protojson's Timestamp form: RFC 3339 in UTC, with 0, 3, 6 or 9
// fractional digits.
func (e *jsonEnc) ts(t *timestamppb.Timestamp) {
	const minSec, maxSec = -62135596800, 253402300799 // 0001-01-01, 9999-12-31
	s, n := t.GetSeconds(), t.GetNanos()
	if s < minSec || s > maxSec || n < 0 || n > 999_999_999 {
		e.err = errJSON
		return
	}
	e.b = append(e.b, '"')
	e.b = appendDateTime(e.b, s)
	if n != 0 {
		digits := 9
		switch {
		case n%1_000_000 == 0:
			n, digits = n/1_000_000, 3
		case n%1_000 == 0:
			n, digits = n/1_000, 6
		}
		e.b = append(e.b, '.')
		var buf [9]byte
		for i := digits - 1; i >= 0; i-- {
			buf[i] = byte('0' + n%10)
			n /= 10
		}
		e.b = append(e.b, buf[:digits]...)
	}
	e.b = append(e.b, 'Z', '"')
}

// appendDateTime appends unix second s as 2006-01-02T15:04:05 (UTC),
// without time.Format's layout interpretation (two per event).
func appendDateTime(b []byte, s int64) []byte {
	days, secs := s/86400, s%86400
	if secs < 0 {
		days, secs = days-1, secs+86400
	}
	// Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
	z := days + 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d := doy - (153*mp+2)/5 + 1
	m := mp + 3
	if m > 12 {
		m -= 12
	}
	if m <= 2 {
		y++
	}
	two := func(b []byte, v int64) []byte { return append(b, byte('0'+v/10), byte('0'+v%10)) }
	b = two(two(b, y/100), y%100)
	b = append(b, '-')
	b = two(b, m)
	b = append(b, '-')
	b = two(b, d)
	b = append(b, 'T')
	b = two(b, secs/3600)
	b = append(b, ':')
	b = two(b, secs/60%60)
	b = append(b, ':')
	return two(b, secs%60)
}

// float is protojson's double: NaN and infinities as strings, otherwise the
// shortest form, exponent only for very small or large magnitudes.
func (e *jsonEnc) float(f float64) {
	switch {
	case math.IsNaN(f):
		e.b = append(e.b, `"NaN"`...)
		return
	case math.IsInf(f, 1):
		e.b = append(e.b, `"Infinity"`...)
		return
	case math.IsInf(f, -1):
		e.b = append(e.b, `"-Infinity"`...)
		return
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	e.b = strconv.AppendFloat(e.b, f, format, -1, 64)
}

const hexDigits = "0123456789abcdef"

// plainByte marks the bytes quote copies as they are.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// plain8 reports whether none of s's 8 bytes needs escaping or UTF-8
// checking: no byte below 0x20, '"', '\\' or at or above 0x80. (For any
// n ≤ 128, (x - n·0x01…) & ^x & 0x80… is non-zero exactly when some byte of
// x is below n.)
func plain8(s string) bool {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	x := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
	q := x ^ (lo * '"')
	b := x ^ (lo * '\\')
	return ((x-lo*0x20)&^x|(q-lo)&^q|(b-lo)&^b|x)&hi == 0
}

// quote writes a JSON string. Invalid UTF-8 cannot be carried (protojson
// refuses it too), so it fails the encoding.
func (e *jsonEnc) quote(s string) {
	e.b = append(e.b, '"')
	start := 0
	for i := 0; i < len(s); {
		// Eight plain ASCII bytes at a time: most text needs no escaping.
		for i+8 <= len(s) && plain8(s[i:i+8]) {
			i += 8
		}
		for i < len(s) && plainByte[s[i]] {
			i++
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				e.err = errJSON
				return
			}
			i += size
			continue
		}
		if c >= 0x20 && c != '"' && c != '\\' {
			i++
			continue
		}
		e.b = append(e.b, s[start:i]...)
		switch c {
		case '"', '\\':
			e.b = append(e.b, '\\', c)
		case '\n':
			e.b = append(e.b, '\\', 'n')
		case '\r':
			e.b = append(e.b, '\\', 'r')
		case '\t':
			e.b = append(e.b, '\\', 't')
		case '\b':
			e.b = append(e.b, '\\', 'b')
		case '\f':
			e.b = append(e.b, '\\', 'f')
		default:
			e.b = append(e.b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	e.b = append(e.b, s[start:]...)
	e.b = append(e.b, '"')
}
