package pgcdc

import (
	"encoding/binary"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/stream"
	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

// formRelation is the relation of the Relation message pgoutput sends for
// the form table.
func formRelation() *Relation { return relationOf(formRelationMessage(), nil) }

// formRelationMessage is the Relation message pgoutput sends for the form table.
func formRelationMessage() *pglogrepl.RelationMessage {
	rel := &pglogrepl.RelationMessage{RelationID: 16385, Namespace: "public", RelationName: "form_submissions",
		Columns: []*pglogrepl.RelationMessageColumn{{Flags: 1, Name: "id", DataType: 20}}}
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

func TestDecodeTuplePoison(t *testing.T) {
	rel := formRelation()
	s := form.Sample{"newusername": ptr("Poison"), "dateneededby": ptr("infinity")}
	d := rel.Decode(rowOf(sampleTuple(s, 1)), nil, time.Now())
	var ce *ColumnError
	if !errors.As(d.Err, &ce) || ce.Column != "dateneededby" || !errors.Is(d.Err, form.ErrDecode) {
		t.Fatalf("err = %v, want a ColumnError for dateneededby wrapping form.ErrDecode", d.Err)
	}
	if got := form.String(d.Event, "dateneededby"); got != "infinity" {
		t.Errorf("raw value kept as %q", got)
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
		msg, err := parse(wire)
		if err != nil {
			return
		}
		ins, ok := msg.(*pglogrepl.InsertMessage)
		if !ok {
			return
		}
		// Also splice the fuzzed value into one column, as text.
		if n := len(ins.Tuple.Columns); n > 0 {
			ins.Tuple.Columns[int(col)%n] = &pglogrepl.TupleDataColumn{DataType: 't', Data: []byte(value)}
		}
		d := rel.Decode(rowOf(ins.Tuple), &formsv1.Source{}, time.Unix(0, 0))
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
