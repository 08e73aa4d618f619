package stream

import (
	"errors"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
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
	e := jsonEnc{b: dst}
	e.open()
	if v := ev.GetSchemaVersion(); v != 0 {
		e.key("schema_version")
		e.b = strconv.AppendUint(e.b, uint64(v), 10)
	}
	e.str("hash", ev.GetHash())
	if fs := ev.GetHashFields(); len(fs) > 0 {
		e.key("hash_fields")
		e.b = append(e.b, '[')
		for i, f := range fs {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.quote(f)
		}
		e.b = append(e.b, ']')
	}
	e.columns("columns", ev.GetColumns())
	if s := ev.GetSource(); s != nil {
		e.key("source")
		e.open()
		e.str("origin", s.GetOrigin())
		e.str("database", s.GetDatabase())
		e.str("schema", s.GetSchema())
		e.str("table", s.GetTable())
		e.columns("primary_key", s.GetPrimaryKey())
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

func (e *jsonEnc) columns(k string, cols []*formsv1.Column) {
	if len(cols) == 0 {
		return
	}
	e.key(k)
	e.b = append(e.b, '[')
	for i, c := range cols {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		e.open()
		e.str("name", c.GetName())
		e.str("pg_type", c.GetPgType())
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
	e.b = time.Unix(s, 0).UTC().AppendFormat(e.b, "2006-01-02T15:04:05")
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

// quote writes a JSON string. Invalid UTF-8 cannot be carried (protojson
// refuses it too), so it fails the encoding.
func (e *jsonEnc) quote(s string) {
	e.b = append(e.b, '"')
	start := 0
	for i := 0; i < len(s); {
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
