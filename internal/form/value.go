// Package form is the captured web-form row: typed column values, the record
// hash, and the event that carries both.
package form

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

// ErrDecode marks a column value that cannot be carried in an event at all
// (text that is not UTF-8, from a SQL_ASCII database). Such a row is a
// poison row: it is dead-lettered, never retried. Every value PostgreSQL
// sends as text is carried: typed when a Value kind holds it exactly,
// otherwise as PostgreSQL's own rendering (raw).
var ErrDecode = errors.New("cannot decode value")

// PostgreSQL type OIDs that get a typed Value; everything else is carried raw.
const (
	oidBool        = 16
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidText        = 25
	oidFloat4      = 700
	oidFloat8      = 701
	oidBPChar      = 1042
	oidVarchar     = 1043
	oidDate        = 1082
	oidTimestamp   = 1114
	oidTimestampTZ = 1184
	oidNumeric     = 1700
)

// TypeName is PostgreSQL's name for the OIDs this package knows; other types
// are named "oid:N" unless the caller knows better.
func TypeName(oid uint32) string {
	switch oid {
	case oidBool:
		return "bool"
	case oidInt8:
		return "int8"
	case oidInt2:
		return "int2"
	case oidInt4:
		return "int4"
	case oidText:
		return "text"
	case oidFloat4:
		return "float4"
	case oidFloat8:
		return "float8"
	case oidBPChar:
		return "bpchar"
	case oidVarchar:
		return "varchar"
	case oidDate:
		return "date"
	case oidTimestamp:
		return PgTimestamp
	case oidTimestampTZ:
		return "timestamptz"
	case oidNumeric:
		return "numeric"
	}
	return "oid:" + strconv.FormatUint(uint64(oid), 10)
}

// Null is the SQL NULL value.
func Null() *formsv1.Value { return &formsv1.Value{Kind: &formsv1.Value_Null{Null: true}} }

// Text is a text value.
func Text(s string) *formsv1.Value { return &formsv1.Value{Kind: &formsv1.Value_Text{Text: s}} }

// DecodeText turns PostgreSQL's text output for a column of type oid into
// a Value: typed when the kind holds it exactly, raw (the text itself)
// otherwise. It is what pgoutput sends and what a table scan reads in the
// text format, so capture and backfill produce identical events (and
// hashes). It expects the ISO DateStyle that pgcdc's sessions pin.
func DecodeText(oid uint32, text string) *formsv1.Value {
	return new(Slot).Decode(oid, text)
}

// Slot is the reusable storage of one column's Value: decoding into it
// allocates nothing beyond the value's text. The Value it returns is valid
// until the slot's next use.
type Slot struct {
	v       formsv1.Value
	null    formsv1.Value_Null
	text    formsv1.Value_Text
	integer formsv1.Value_Integer
	number  formsv1.Value_Number
	decimal formsv1.Value_Decimal
	boolean formsv1.Value_Boolean
	date    formsv1.Value_Date
	ts      formsv1.Value_Timestamp
	tsv     timestamppb.Timestamp
	raw     formsv1.Value_Raw
}

// Null is SQL NULL.
func (s *Slot) Null() *formsv1.Value {
	s.null.Null = true
	s.v.Kind = &s.null
	return &s.v
}

// Raw is a value carried as PostgreSQL's text.
func (s *Slot) Raw(text string) *formsv1.Value {
	s.raw.Raw = text
	s.v.Kind = &s.raw
	return &s.v
}

// Decode is DecodeText into the slot.
func (s *Slot) Decode(oid uint32, text string) *formsv1.Value {
	switch oid {
	case oidText, oidVarchar, oidBPChar:
		s.text.Text = text
		s.v.Kind = &s.text
		return &s.v
	case oidBool:
		switch text {
		case "t", "true":
			s.boolean.Boolean = true
		case "f", "false":
			s.boolean.Boolean = false
		default:
			return s.Raw(text)
		}
		s.v.Kind = &s.boolean
		return &s.v
	case oidInt2, oidInt4, oidInt8:
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return s.Raw(text)
		}
		s.integer.Integer = n
		s.v.Kind = &s.integer
		return &s.v
	case oidFloat4, oidFloat8:
		// Shortest-exact output (extra_float_digits ≥ 1) parses back to the
		// same number, NaN, ±Infinity and -0 included.
		f, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return s.Raw(text)
		}
		s.number.Number = f
		s.v.Kind = &s.number
		return &s.v
	case oidNumeric:
		// Decimal carries numeric's own text, of any length: checked for
		// numeric's output syntax, not parsed (1e400 does not fit a float).
		if !isNumericText(text) {
			return s.Raw(text)
		}
		s.decimal.Decimal = text
		s.v.Kind = &s.decimal
		return &s.v
	case oidDate:
		// A date kind is YYYY-MM-DD of the proleptic Gregorian AD calendar;
		// "infinity", "… BC" and years past 9999 stay PostgreSQL's text.
		if !isISODate(text) {
			return s.Raw(text)
		}
		s.date.Date = text
		s.v.Kind = &s.date
		return &s.v
	case oidTimestamp, oidTimestampTZ:
		t, err := parseTimestamp(text)
		if err != nil || t.Year() < 1 || t.Year() > 9999 {
			// A Timestamp holds years 1-9999 in UTC: infinity, BC and far
			// future instants stay PostgreSQL's text.
			return s.Raw(text)
		}
		s.tsv.Seconds, s.tsv.Nanos = t.Unix(), int32(t.Nanosecond())
		s.ts.Timestamp = &s.tsv
		s.v.Kind = &s.ts
		return &s.v
	}
	return s.Raw(text)
}

// isISODate reports whether s is a valid YYYY-MM-DD date of years 1-9999
// (time.Parse's check, without its cost per row).
func isISODate(s string) bool {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return false
	}
	num := func(t string) int {
		n := 0
		for i := 0; i < len(t); i++ {
			if t[i] < '0' || t[i] > '9' {
				return -1
			}
			n = n*10 + int(t[i]-'0')
		}
		return n
	}
	y, m, d := num(s[:4]), num(s[5:7]), num(s[8:])
	if y < 1 || m < 1 || m > 12 || d < 1 {
		return false
	}
	days := [...]int{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[m-1]
	if m == 2 && y%4 == 0 && (y%100 != 0 || y%400 == 0) {
		days = 29
	}
	return d <= days
}

// isNumericText reports whether s is numeric's output: [-]digits[.digits],
// NaN, Infinity or -Infinity.
func isNumericText(s string) bool {
	switch s {
	case "NaN", "Infinity", "-Infinity":
		return true
	}
	if len(s) > 0 && s[0] == '-' {
		s = s[1:]
	}
	digits, dot := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot && digits > 0 && i < len(s)-1:
			dot = true
		default:
			return false
		}
	}
	return digits > 0
}

// parseTimestamp reads PostgreSQL's ISO output ("2025-10-24 12:00:00.5+02",
// "+05:30" offsets, or no offset for timestamp without time zone = UTC).
func parseTimestamp(s string) (time.Time, error) {
	for _, layout := range []string{
		"2006-01-02 15:04:05.999999999Z07",
		"2006-01-02 15:04:05.999999999",
		"2006-01-02 15:04:05.999999999Z07:00",
		"2006-01-02 15:04:05.999999999Z07:00:00",
	} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, errors.New("unrecognised timestamp")
}

// Canonical is the value's canonical text, used by the hash and by the
// mapping. ok is false for NULL (and for a nil value, which means absent).
func Canonical(v *formsv1.Value) (s string, ok bool) {
	if v == nil {
		return "", false
	}
	switch k := v.Kind.(type) {
	case *formsv1.Value_Text:
		return k.Text, true
	case *formsv1.Value_Integer:
		return strconv.FormatInt(k.Integer, 10), true
	case *formsv1.Value_Number:
		return strconv.FormatFloat(k.Number, 'g', -1, 64), true
	case *formsv1.Value_Decimal:
		return k.Decimal, true
	case *formsv1.Value_Boolean:
		return strconv.FormatBool(k.Boolean), true
	case *formsv1.Value_Date:
		return k.Date, true
	case *formsv1.Value_Timestamp:
		return k.Timestamp.AsTime().UTC().Format(time.RFC3339Nano), true
	case *formsv1.Value_Raw:
		return k.Raw, true
	}
	return "", false
}

// PgTimestamp is the type name of timestamp without time zone: a wall
// clock, carried as if it were UTC.
const PgTimestamp = "timestamp"

// Lookup returns the value of the named column, or nil when the event has no
// such column. Column names compare exactly (PostgreSQL's quoted names are
// case-sensitive: "Comments" is not comments).
func Lookup(ev *formsv1.FormSubmission, name string) *formsv1.Value {
	return LookupColumn(ev, name).GetValue()
}

// LookupColumn is Lookup's column, its PostgreSQL type included.
func LookupColumn(ev *formsv1.FormSubmission, name string) *formsv1.Column {
	for _, c := range ev.GetColumns() {
		if c.GetName() == name {
			return c
		}
	}
	return nil
}

// String is Canonical for a named column: "" when NULL or absent.
func String(ev *formsv1.FormSubmission, name string) string {
	s, _ := Canonical(Lookup(ev, name))
	return strings.Clone(s)
}
