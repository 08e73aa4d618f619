package pgcdc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"google.golang.org/protobuf/proto"

	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/stream"
	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

// formRelation is the relation of the Relation message pgoutput sends for
// the form table.
func formRelation() *Relation { return relationOf(formRelationMessage(), nil, []string{"id"}) }

// formRelationMessage is the Relation message pgoutput sends for the form table.
func formRelationMessage() *pglogrepl.RelationMessage {
	rel := &pglogrepl.RelationMessage{RelationID: 16385, Namespace: "public", RelationName: "form_submissions",
		ReplicaIdentity: 'd', Columns: []*pglogrepl.RelationMessageColumn{{Flags: 1, Name: "id", DataType: 20}}}
	for _, c := range form.FormColumns {
		oid := uint32(25)
		if c.Type == "date" {
			oid = 1082
		}
		rel.Columns = append(rel.Columns, &pglogrepl.RelationMessageColumn{Name: c.Name, DataType: oid})
	}
	return rel
}

// sampleTuple is the tuple pgoutput sends for a sample row with the given id.
func sampleTuple(s form.Sample, id int) *pglogrepl.TupleData {
	tup := &pglogrepl.TupleData{Columns: []*pglogrepl.TupleDataColumn{{DataType: 't', Data: []byte(strconv.Itoa(id))}}}
	for _, c := range form.FormColumns {
		if v := s[c.Name]; v != nil {
			tup.Columns = append(tup.Columns, &pglogrepl.TupleDataColumn{DataType: 't', Data: []byte(*v)})
		} else {
			tup.Columns = append(tup.Columns, &pglogrepl.TupleDataColumn{DataType: 'n'})
		}
	}
	tup.ColumnNum = uint16(len(tup.Columns))
	return tup
}

// A captured sample row hashes exactly like the sample (and so like the
// golden file in internal/form), whatever its id.
func TestDecodeTupleMatchesSampleHash(t *testing.T) {
	samples, err := form.Samples()
	if err != nil {
		t.Fatal(err)
	}
	rel := formRelation()
	for i, s := range samples {
		d := rel.Decode(rowOf(sampleTuple(s, 1000+i)), &formsv1.Source{}, time.Now())
		if d.Err != nil {
			t.Fatalf("sample %d: %v", i+1, d.Err)
		}
		cols := s.Columns()
		if want := form.Hash(cols, form.HashFields(cols, nil, nil)); d.Event.GetHash() != want {
			t.Errorf("sample %d: hash %s, want %s", i+1, d.Event.GetHash(), want)
		}
		if pk := d.Event.GetSource().GetPrimaryKey(); len(pk) != 1 || pk[0].GetValue().GetInteger() != int64(1000+i) {
			t.Errorf("sample %d: primary key %v", i+1, pk)
		}
	}
}

// A value a typed kind cannot hold is carried as PostgreSQL's text, not a
// poison row (issue 10); only text that is not UTF-8 or a value pgoutput did
// not send as text is.
func TestDecodePoisonAndRaw(t *testing.T) {
	rel := formRelation()
	s := form.Sample{"newusername": ptr("Not Poison"), "dateneededby": ptr("infinity")}
	d := rel.Decode(rowOf(sampleTuple(s, 1)), nil, time.Now())
	if d.Err != nil {
		t.Fatalf("infinity date: %v, want no error", d.Err)
	}
	if v := form.Lookup(d.Event, "dateneededby"); v.GetRaw() != "infinity" {
		t.Errorf("dateneededby = %v, want raw infinity", v)
	}

	for name, f := range map[string]Field{
		"invalid UTF-8": {Kind: FieldText, Data: []byte("caf\xe9")},
		"binary":        {Kind: 'b', Data: []byte{0, 1}},
		"unchanged":     {Kind: 'u'},
	} {
		row := rowOf(sampleTuple(form.Sample{"newusername": ptr("Poison")}, 1))
		row[11] = f // dateneededby
		d := rel.Decode(row, nil, time.Now())
		var ce *ColumnError
		if !errors.As(d.Err, &ce) || ce.Column != "dateneededby" {
			t.Errorf("%s: err = %v, want a ColumnError for dateneededby", name, d.Err)
		}
		if got := form.String(d.Event, "newusername"); got != "Poison" {
			t.Errorf("%s: the row's other values are kept: newusername = %q", name, got)
		}
	}
}

// Relation.Decode builds exactly the event form.NewEvent builds, row after
// row on the same (reused) storage, also for a row carrying fewer columns.
func TestDecodeIsNewEvent(t *testing.T) {
	rel := formRelation()
	src := func() *formsv1.Source { return &formsv1.Source{Origin: "capture", CommitLsn: "0/1"} }
	now := time.Date(2025, 10, 15, 9, 30, 1, 5000, time.UTC)
	samples, err := form.Samples()
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range samples {
		row := rowOf(sampleTuple(s, 1000+i))
		if i%7 == 0 {
			row = row[:5]
		}
		got := rel.Decode(row, src(), now).Event
		var cols []*formsv1.Column
		for j, f := range row {
			v := form.Null()
			if f.Kind == FieldText {
				v = form.DecodeText(rel.Columns[j].OID, string(f.Data))
			}
			cols = append(cols, &formsv1.Column{Name: rel.Columns[j].Name, PgType: rel.Columns[j].Type, Value: v})
		}
		want := form.NewEvent(cols, []string{"id"}, nil, src(), now)
		if len(row) < len(rel.Columns) {
			// hash_fields name the relation's columns; those absent from the
			// row hash like NULL, so the hash is NewEvent's all the same.
			want.HashFields = form.HashFields(formColumns(rel), []string{"id"}, nil)
		}
		if !proto.Equal(got, want) {
			t.Fatalf("sample %d:\n got %v\nwant %v", i, got, want)
		}
	}
}

func TestParseTable(t *testing.T) {
	for in, want := range map[string]Table{
		"public.form_submissions": {"public", "form_submissions"},
		"form_submissions":        {"public", "form_submissions"},
		`"Forms"."Subs"`:          {"Forms", "Subs"},
	} {
		got, err := ParseTable(in)
		if err != nil || got != want {
			t.Errorf("ParseTable(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", ".x", "a.", "a.b.c"} {
		if _, err := ParseTable(bad); err == nil {
			t.Errorf("ParseTable(%q) accepted", bad)
		}
	}
}

func ptr(s string) *string { return &s }

// encodeInsert builds the wire form of a pgoutput Insert message.
func encodeInsert(relID uint32, tup *pglogrepl.TupleData) []byte {
	b := []byte{'I'}
	b = binary.BigEndian.AppendUint32(b, relID)
	b = append(b, 'N')
	b = binary.BigEndian.AppendUint16(b, uint16(len(tup.Columns)))
	for _, c := range tup.Columns {
		b = append(b, c.DataType)
		if c.DataType == 't' || c.DataType == 'b' {
			b = binary.BigEndian.AppendUint32(b, uint32(len(c.Data)))
			b = append(b, c.Data...)
		}
	}
	return b
}

// FuzzDecodeInsert feeds pgoutput Insert messages built from the sample
// rows, then mutated, through parse and Relation.Decode: whatever arrives, the
// conversion must not panic, and every event it accepts must encode and
// carry a hash that is recomputable from its columns.
func FuzzDecodeInsert(f *testing.F) {
	samples, err := form.Samples()
	if err != nil {
		f.Fatal(err)
	}
	rel := formRelation()
	for i, s := range samples {
		f.Add(encodeInsert(rel.ID, sampleTuple(s, i+1)), "", uint8(0))
	}
	f.Add([]byte{'I', 0, 0, 64, 1, 'N', 0, 2, 't', 0, 0, 0, 1, '7', 'n'}, "infinity", uint8(11))
	f.Fuzz(func(t *testing.T, wire []byte, value string, col uint8) {
		relID, row, err := parseInsert(wire, nil)
		if err != nil {
			return
		}
		// The zero-copy decoder reads what pglogrepl's reads.
		if ref, ok := pglogreplInsert(wire); !ok || ref.RelationID != relID || !slices.EqualFunc(rowOf(ref.Tuple), row, sameField) {
			t.Fatalf("parseInsert: relation %d %v; pglogrepl: %v", relID, row, ref)
		}
		// Also splice the fuzzed value into one column, as text.
		if n := len(row); n > 0 {
			row[int(col)%n] = Field{Kind: FieldText, Data: []byte(value)}
		}
		d := rel.Decode(row, &formsv1.Source{}, time.Unix(0, 0))
		if d.Event == nil {
			t.Fatal("nil event")
		}
		if d.Err != nil {
			return
		}
		cols := d.Event.GetColumns()
		if got := form.Hash(cols, form.HashFields(cols, []string{"id"}, nil)); got != d.Event.GetHash() {
			t.Fatalf("hash %s, recomputed %s", d.Event.GetHash(), got)
		}
		if _, err := stream.Marshal(d.Event); err != nil {
			t.Fatalf("accepted event does not encode: %v", err)
		}
	})
}

// pglogreplInsert is pglogrepl's decoding of an Insert message (a panic on
// malformed input counts as refusal).
func pglogreplInsert(wire []byte) (m *pglogrepl.InsertMessage, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	msg, err := pglogrepl.Parse(wire)
	m, ok = msg.(*pglogrepl.InsertMessage)
	return m, ok && err == nil
}

func sameField(a, b Field) bool { return a.Kind == b.Kind && bytes.Equal(a.Data, b.Data) }

// formColumns are rel's columns as (value-less) event columns.
func formColumns(rel *Relation) []*formsv1.Column {
	var out []*formsv1.Column
	for _, c := range rel.Columns {
		out = append(out, &formsv1.Column{Name: c.Name})
	}
	return out
}
