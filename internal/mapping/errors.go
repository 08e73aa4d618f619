package mapping

import (
	"errors"
	"fmt"
	"strings"
)

// FieldError is one reason a row cannot become a ticket, tied to the Jira
// field (and the form column, when one is mapped to it) so that a
// dead-letter header can name both.
type FieldError struct {
	FieldID   string // "customfield_10073", "summary"
	FieldName string // "Department"; the id again when Jira's meta is unknown
	Column    string // form column, "" for templates and unmapped Jira fields
	Message   string // what is wrong, e.g. `"Fiance" is not an allowed value (allowed: …)`
}

func (e FieldError) Error() string {
	target := e.FieldID
	if e.FieldName != "" && e.FieldName != e.FieldID {
		target += " (" + e.FieldName + ")"
	}
	if e.Column != "" {
		return fmt.Sprintf("column %q → %s: %s", e.Column, target, e.Message)
	}
	return target + ": " + e.Message
}

// Unwrap makes every FieldError an ErrUnmappable.
func (e FieldError) Unwrap() error { return ErrUnmappable }

// RowError carries every problem of one row, so that an operator fixes the
// row once instead of replaying it field by field.
type RowError struct {
	Hash     string
	Problems []FieldError
}

func (e *RowError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Error()
	}
	return ErrUnmappable.Error() + ": " + strings.Join(parts, "; ")
}

// Unwrap makes the RowError an ErrUnmappable (errors.Is) and exposes each
// problem (errors.As to FieldError finds the first).
func (e *RowError) Unwrap() []error {
	errs := make([]error, 0, len(e.Problems)+1)
	errs = append(errs, ErrUnmappable)
	for _, p := range e.Problems {
		errs = append(errs, p)
	}
	return errs
}

// Problems lists the field problems inside err (a *RowError or a single
// FieldError, however wrapped); nil when there are none.
func Problems(err error) []FieldError {
	var re *RowError
	if errors.As(err, &re) {
		return append([]FieldError(nil), re.Problems...)
	}
	var fe FieldError
	if errors.As(err, &fe) {
		return []FieldError{fe}
	}
	return nil
}
