package pgcdc

import (
	"slices"

	"github.com/jackc/pglogrepl"

	"github.com/cowjacket/formjira/internal/form"
)

// Relation describes a table's columns once, for every row decoded
// against it: built from a pgoutput Relation message while streaming, or
// from the catalogue and a result description by a table scan. Rows of
// both are decoded by the same Decode.
type Relation struct {
	ID      uint32 // pgoutput's relation id; 0 for a table scan
	Schema  string
	Name    string
	Columns []Column
	// HashFields are the configured hash columns (empty: all but the key).
	HashFields []string

	b *form.Builder // made on first use: per relation, not per row
}

func (rel *Relation) builder() *form.Builder {
	if rel.b == nil {
		names := make([]string, len(rel.Columns))
		types := make([]string, len(rel.Columns))
		var pk []string
		for i, c := range rel.Columns {
			names[i], types[i] = c.Name, c.Type
			if c.Key {
				pk = append(pk, c.Name)
			}
		}
		rel.b = form.NewBuilder(names, types, pk, rel.HashFields)
	}
	return rel.b
}

// Column is one column of a relation.
type Column struct {
	Name string
	OID  uint32 // type OID (a domain's own, not its base type's)
	Type string // PostgreSQL's type name, or "oid:N" when unknown here
	Key  bool   // part of the primary key (the replica identity)
}

// NewColumn describes a column of type oid.
func NewColumn(name string, oid uint32, key bool) Column {
	return Column{Name: name, OID: oid, Type: form.TypeName(oid), Key: key}
}

// relationOf describes a pgoutput Relation message, its key the primary key.
// Flag 1 marks the replica identity: the primary key under the default
// identity ('d'), so a key changed mid-stream is followed at its place in
// the WAL; under FULL, USING INDEX or NOTHING it is not the key, which is
// then pk, the catalogue's when the session began.
func relationOf(m *pglogrepl.RelationMessage, hashFields, pk []string) *Relation {
	rel := &Relation{ID: m.RelationID, Schema: m.Namespace, Name: m.RelationName, HashFields: hashFields}
	for _, c := range m.Columns {
		key := c.Flags&1 != 0
		if m.ReplicaIdentity != 'd' {
			key = slices.Contains(pk, c.Name)
		}
		rel.Columns = append(rel.Columns, NewColumn(c.Name, c.DataType, key))
	}
	return rel
}

// Field is one value of a row as PostgreSQL sends it: pgoutput's tuple
// column, or a table scan's text-format result value. Data is the text
// output of the column type's output function.
type Field struct {
	Kind byte // FieldNull, FieldText, or pgoutput's 'u' (unchanged TOAST) / 'b' (binary)
	Data []byte
}

// Field kinds, as pgoutput names them.
const (
	FieldNull = pglogrepl.TupleDataTypeNull
	FieldText = pglogrepl.TupleDataTypeText
)

// Row is the values of one row, in the relation's column order.
type Row []Field

// rowOf is a pgoutput tuple as a Row (sharing its bytes).
func rowOf(t *pglogrepl.TupleData) Row {
	if t == nil {
		return nil
	}
	row := make(Row, len(t.Columns))
	for i, c := range t.Columns {
		row[i] = Field{Kind: c.DataType, Data: c.Data}
	}
	return row
}
