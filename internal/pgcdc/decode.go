package pgcdc

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

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
// (undecodable ones as raw text) so an operator sees what was there.
type Decoded struct {
	Event *formsv1.FormSubmission
	Err   error
}

// Decode converts a row of rel into an event. src is filled in with the
// primary key. It never panics on malformed input: the fuzz test holds it
// to that.
func (rel *Relation) Decode(row Row, src *formsv1.Source, now time.Time) Decoded {
	var firstErr error
	var cols []*formsv1.Column
	var pk []string
	if len(row) > len(rel.Columns) {
		firstErr = fmt.Errorf("%w: %d values for %d columns", ErrShape, len(row), len(rel.Columns))
	}
	for i, rc := range rel.Columns {
		if rc.Key {
			pk = append(pk, rc.Name)
		}
		if i >= len(row) {
			// A column the tuple does not carry (never in an INSERT from
			// pgoutput) hashes like NULL: leave it out rather than invent one.
			continue
		}
		f := row[i]
		col := &formsv1.Column{Name: rc.Name, PgType: rc.Type}
		var err error
		switch f.Kind {
		case FieldNull:
			col.Value = form.Null()
		case FieldText:
			if !utf8.Valid(f.Data) {
				// protojson cannot carry it; a UTF8 database never sends it.
				err = fmt.Errorf("%w: invalid UTF-8", form.ErrDecode)
			} else {
				col.Value, err = form.DecodeText(rc.OID, string(f.Data))
			}
			if err != nil {
				col.Value = raw(f.Data)
			}
		default:
			err = fmt.Errorf("%w: value kind %q", ErrShape, f.Kind)
			col.Value = raw(f.Data)
		}
		if err != nil && firstErr == nil {
			firstErr = &ColumnError{Column: rc.Name, Type: rc.Type, Err: err}
		}
		cols = append(cols, col)
	}
	ev := form.NewEvent(cols, pk, rel.HashFields, src, now)
	return Decoded{Event: ev, Err: firstErr}
}

func raw(b []byte) *formsv1.Value {
	return &formsv1.Value{Kind: &formsv1.Value_Raw{Raw: strings.ToValidUTF8(string(b), "\uFFFD")}}
}
