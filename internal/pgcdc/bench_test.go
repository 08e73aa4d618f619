package pgcdc

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/stream"
	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
	"github.com/jackc/pglogrepl"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// insertMessage is the pgoutput Insert message for a tuple of relation rel.
func insertMessage(rel uint32, tup *pglogrepl.TupleData) []byte {
	b := []byte{'I'}
	b = binary.BigEndian.AppendUint32(b, rel)
	b = append(b, 'N')
	b = binary.BigEndian.AppendUint16(b, uint16(len(tup.Columns)))
	for _, c := range tup.Columns {
		b = append(b, c.DataType)
		if c.DataType == 't' {
			b = binary.BigEndian.AppendUint32(b, uint32(len(c.Data)))
			b = append(b, c.Data...)
		}
	}
	return b
}

type benchRow struct {
	rel *pglogrepl.RelationMessage
	msg []byte
	src *formsv1.Source
}

func benchRows(b *testing.B) []benchRow {
	b.Helper()
	samples, err := form.Samples()
	if err != nil {
		b.Fatal(err)
	}
	rel := formRelation()
	rows := make([]benchRow, len(samples))
	for i, s := range samples {
		rows[i] = benchRow{rel: rel, msg: insertMessage(rel.RelationID, sampleTuple(s, 1000+i))}
	}
	return rows
}

func source() *formsv1.Source {
	return &formsv1.Source{Origin: "capture", Database: "forms", Schema: "public", Table: "form_submissions",
		CommitLsn: "0/16B3748", CommitTime: timestamppb.Now(), Xid: 731, Slot: "cowjacket"}
}

// The stream's per-row work, step by step and whole, over the 200 sample
// rows: pgoutput parse, tuple → event (values, hash), event → JSON body.
func BenchmarkParseInsert(b *testing.B) {
	rows := benchRows(b)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := parse(rows[i%len(rows)].msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeTuple(b *testing.B) {
	rows := benchRows(b)
	tuples := make([]*pglogrepl.TupleData, len(rows))
	for i, r := range rows {
		m, _ := parse(r.msg)
		tuples[i] = m.(*pglogrepl.InsertMessage).Tuple
	}
	rel := formRelation()
	now := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if d := DecodeTuple(rel, tuples[i%len(tuples)], nil, source(), now); d.Err != nil {
			b.Fatal(d.Err)
		}
	}
}

func events(b *testing.B) []*formsv1.FormSubmission {
	b.Helper()
	rows := benchRows(b)
	evs := make([]*formsv1.FormSubmission, len(rows))
	for i, r := range rows {
		m, _ := parse(r.msg)
		evs[i] = DecodeTuple(r.rel, m.(*pglogrepl.InsertMessage).Tuple, nil, source(), time.Now()).Event
	}
	return evs
}

// BenchmarkMarshalProtojson is what capture used to do per row.
func BenchmarkMarshalProtojson(b *testing.B) {
	evs := events(b)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		body, err := stream.Marshal(evs[i%len(evs)])
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(body)))
	}
}

// BenchmarkAppendJSON is what capture does now.
func BenchmarkAppendJSON(b *testing.B) {
	evs := events(b)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		body, err := AppendJSON(make([]byte, 0, 2048), evs[i%len(evs)])
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(body)))
	}
}

// BenchmarkRow is the whole path, pgoutput bytes → JSON body, both ways.
func BenchmarkRow(b *testing.B) {
	rows := benchRows(b)
	for _, enc := range []struct {
		name string
		fn   func(*formsv1.FormSubmission) ([]byte, error)
	}{
		{"protojson", stream.Marshal},
		{"AppendJSON", func(ev *formsv1.FormSubmission) ([]byte, error) { return AppendJSON(make([]byte, 0, 2048), ev) }},
	} {
		b.Run(enc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				r := rows[i%len(rows)]
				m, err := parse(r.msg)
				if err != nil {
					b.Fatal(err)
				}
				d := DecodeTuple(r.rel, m.(*pglogrepl.InsertMessage).Tuple, nil, source(), time.Now())
				if _, err := enc.fn(d.Event); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
