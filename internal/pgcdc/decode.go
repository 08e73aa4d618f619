package pgcdc

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/cowjacket/formjira/internal/form"
	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

// ErrShape marks a tuple that does not match its relation (more columns than
// the relation describes, a binary or unchanged-TOAST value in an INSERT).
// It is treated like an undecodable value: dead-lettered, never fatal.
var ErrShape = errors.New("tuple does not match relation")

// ColumnError names the column whose value could not be decoded.
type ColumnError struct {
	Column, Type string
	Err          error
}

func (e *ColumnError) Error() string {
	return fmt.Sprintf("column %q (%s): %v", e.Column, e.Type, e.Err)
}

func (e *ColumnError) Unwrap() error { return e.Err }

// Decoded is one row turned into an event. When Err is set the row is a
// poison row: Event then carries every value as far as it could be read
// (undecodable ones as raw text) so an operator sees what was there. The
// event is its Relation's storage, valid until the next Decode on it, and
// its text values alias the row's data (not copied: one string per value
// was a tenth of capture's CPU on a realistic row), so it is also valid
// only while that is: until the next receive, or the next scanned row.
type Decoded struct {
	Event *formsv1.FormSubmission
	Err   error
}

// Decode converts a row of rel into an event, src filled in with the
// primary key. Every text value is carried (form.Slot.Decode: typed, or
// PostgreSQL's own text as raw); only text that is not UTF-8 (a SQL_ASCII
// database) or a value pgoutput did not send as text makes a poison row.
// It never panics on malformed input: the fuzz test holds it to that.
func (rel *Relation) Decode(row Row, src *formsv1.Source, now time.Time) Decoded {
	b := rel.builder()
	var firstErr error
	if len(row) > len(rel.Columns) {
		firstErr = fmt.Errorf("%w: %d values for %d columns", ErrShape, len(row), len(rel.Columns))
	}
	n := min(len(row), len(rel.Columns))
	for i := range n {
		f, slot := row[i], b.Slot(i)
		var v *formsv1.Value
		var err error
		switch f.Kind {
		case FieldNull:
			v = slot.Null()
		case FieldText:
			if utf8.Valid(f.Data) {
				v = slot.Decode(rel.Columns[i].OID, unsafe.String(unsafe.SliceData(f.Data), len(f.Data)))
			} else {
				// protojson cannot carry it; only a SQL_ASCII database sends it.
				err = fmt.Errorf("%w: invalid UTF-8", form.ErrDecode)
				v = slot.Raw(strings.ToValidUTF8(string(f.Data), "\uFFFD"))
			}
		default:
			err = fmt.Errorf("%w: value kind %q", ErrShape, f.Kind)
			v = slot.Raw(strings.ToValidUTF8(string(f.Data), "\uFFFD"))
		}
		b.Set(i, v)
		if err != nil && firstErr == nil {
			firstErr = &ColumnError{Column: rel.Columns[i].Name, Type: rel.Columns[i].Type, Err: err}
		}
	}
	// A column the tuple does not carry (never in an INSERT from pgoutput)
	// hashes like NULL: the event leaves it out rather than invent one.
	return Decoded{Event: b.Event(n, src, now), Err: firstErr}
}
