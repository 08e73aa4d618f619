// Package form is the captured web-form row: typed column values, the record
// hash, and the event that carries both.
package form

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// ErrDecode marks a column value that cannot be turned into a typed Value.
// Such a row is a poison row: it is dead-lettered, never retried.
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
		return "timestamp"
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

// DecodeText turns PostgreSQL's text output for a column of type oid into a
// typed Value. It is what pgoutput sends and what `SELECT col::text` returns,
// so capture and backfill produce identical events (and hashes).
func DecodeText(oid uint32, text string) (*formsv1.Value, error) {
	switch oid {
	case oidText, oidVarchar, oidBPChar:
		return Text(text), nil
	case oidBool:
		switch text {
		case "t", "true":
			return &formsv1.Value{Kind: &formsv1.Value_Boolean{Boolean: true}}, nil
		case "f", "false":
			return &formsv1.Value{Kind: &formsv1.Value_Boolean{Boolean: false}}, nil
		}
		return nil, fmt.Errorf("%w: bool %q", ErrDecode, text)
	case oidInt2, oidInt4, oidInt8:
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: integer %q", ErrDecode, text)
		}
		return &formsv1.Value{Kind: &formsv1.Value_Integer{Integer: n}}, nil
	case oidFloat4, oidFloat8:
		f, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: float %q", ErrDecode, text)
		}
		return &formsv1.Value{Kind: &formsv1.Value_Number{Number: f}}, nil
	case oidNumeric:
		if _, err := strconv.ParseFloat(text, 64); err != nil && text != "NaN" {
			return nil, fmt.Errorf("%w: numeric %q", ErrDecode, text)
		}
		return &formsv1.Value{Kind: &formsv1.Value_Decimal{Decimal: text}}, nil
	case oidDate:
		// Dates outside the Gregorian AD range ("infinity", "... BC") cannot
		// become a Jira date: reject here so the row is dead-lettered with the
		// column named rather than failing later with a vaguer reason.
		if _, err := time.Parse(time.DateOnly, text); err != nil {
			return nil, fmt.Errorf("%w: date %q", ErrDecode, text)
		}
		return &formsv1.Value{Kind: &formsv1.Value_Date{Date: text}}, nil
	case oidTimestamp, oidTimestampTZ:
		t, err := parseTimestamp(text)
		if err != nil {
			return nil, fmt.Errorf("%w: timestamp %q", ErrDecode, text)
		}
		return &formsv1.Value{Kind: &formsv1.Value_Timestamp{Timestamp: timestamppb.New(t)}}, nil
	}
	return &formsv1.Value{Kind: &formsv1.Value_Raw{Raw: text}}, nil
}

// parseTimestamp reads PostgreSQL's ISO output ("2025-10-24 12:00:00.5+02",
// "+05:30" offsets, or no offset for timestamp without time zone = UTC).
func parseTimestamp(s string) (time.Time, error) {
	for _, layout := range []string{
		"2006-01-02 15:04:05.999999999Z07:00:00",
		"2006-01-02 15:04:05.999999999Z07:00",
		"2006-01-02 15:04:05.999999999Z07",
		"2006-01-02 15:04:05.999999999",
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

// Lookup returns the value of the named column, or nil when the event has no
// such column. Column names compare exactly (PostgreSQL's quoted names are
// case-sensitive: "Comments" is not comments).
func Lookup(ev *formsv1.FormSubmission, name string) *formsv1.Value {
	for _, c := range ev.GetColumns() {
		if c.GetName() == name {
			return c.GetValue()
		}
	}
	return nil
}

// String is Canonical for a named column: "" when NULL or absent.
func String(ev *formsv1.FormSubmission, name string) string {
	s, _ := Canonical(Lookup(ev, name))
	return strings.Clone(s)
}
