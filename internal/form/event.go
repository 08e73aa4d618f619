package form

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

// SchemaVersion is the event layout version of cowjacket.forms.v1.
const SchemaVersion = 1

// NewEvent builds the event for one row: it picks the hash fields (configured
// or default), computes the hash and fills the primary key into src.
func NewEvent(columns []*formsv1.Column, primaryKey, configuredHashFields []string, src *formsv1.Source, capturedAt time.Time) *formsv1.FormSubmission {
	fields := HashFields(columns, primaryKey, configuredHashFields)
	if src == nil {
		src = &formsv1.Source{}
	}
	src.PrimaryKey = nil
	for _, c := range columns {
		for _, pk := range primaryKey {
			if c.GetName() == pk {
				src.PrimaryKey = append(src.PrimaryKey, c)
			}
		}
	}
	return &formsv1.FormSubmission{
		SchemaVersion: SchemaVersion,
		Hash:          Hash(columns, fields),
		HashFields:    fields,
		Columns:       columns,
		Source:        src,
		CapturedAt:    timestamppb.New(capturedAt),
	}
}

// Builder assembles the events of one column layout (a table's columns,
// read once per pgoutput Relation message or table scan), reusing its
// storage from row to row: the hash plan, the columns, their values, the
// primary key. It computes what NewEvent computes. The event it returns is
// valid until the builder's next Event; a Builder is not safe for
// concurrent use.
type Builder struct {
	plan     *HashPlan
	pk       []int // column indexes of the primary key
	ev       formsv1.FormSubmission
	cols     []formsv1.Column
	ptrs     []*formsv1.Column
	slots    []Slot
	pkCols   []*formsv1.Column
	captured timestamppb.Timestamp
}

// NewBuilder prepares events for columns named names of PostgreSQL types
// types (parallel slices), with primaryKey and HashFields' choice of fields.
func NewBuilder(names, types, primaryKey, configuredHashFields []string) *Builder {
	b := &Builder{
		plan:  NewHashPlan(names, primaryKey, configuredHashFields),
		cols:  make([]formsv1.Column, len(names)),
		ptrs:  make([]*formsv1.Column, len(names)),
		slots: make([]Slot, len(names)),
	}
	for i, n := range names {
		b.cols[i].Name, b.cols[i].PgType = n, types[i]
		b.ptrs[i] = &b.cols[i]
		for _, k := range primaryKey {
			if k == n {
				b.pk = append(b.pk, i)
			}
		}
	}
	return b
}

// Slot is the storage of column i's value for the next Event.
func (b *Builder) Slot(i int) *Slot { return &b.slots[i] }

// Set makes v (from Slot(i)) column i's value.
func (b *Builder) Set(i int, v *formsv1.Value) { b.cols[i].Value = v }

// Event is the event of the first n columns (a row may carry fewer than
// the layout has: the others hash like NULL and are left out) with source
// src, its primary key filled in.
func (b *Builder) Event(n int, src *formsv1.Source, capturedAt time.Time) *formsv1.FormSubmission {
	cols := b.ptrs[:min(n, len(b.ptrs))]
	if src == nil {
		src = &formsv1.Source{}
	}
	b.pkCols = b.pkCols[:0]
	for _, i := range b.pk {
		if i < len(cols) {
			b.pkCols = append(b.pkCols, cols[i])
		}
	}
	src.PrimaryKey = b.pkCols
	b.captured.Seconds, b.captured.Nanos = capturedAt.Unix(), int32(capturedAt.Nanosecond())
	ev := &b.ev
	ev.SchemaVersion = SchemaVersion
	ev.Hash = b.plan.Hash(cols)
	ev.HashFields = b.plan.Fields()
	ev.Columns = cols
	ev.Source = src
	ev.CapturedAt = &b.captured
	return ev
}
