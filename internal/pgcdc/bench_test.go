package pgcdc

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/stream"
	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
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
	rel *Relation
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
		rows[i] = benchRow{rel: rel, msg: insertMessage(rel.ID, sampleTuple(s, 1000+i))}
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
	row := make(Row, 0, 16)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, _, err := parseInsert(rows[i%len(rows)].msg, row); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	rows := benchRows(b)
	tuples := make([]Row, len(rows))
	for i, r := range rows {
		_, tuples[i], _ = parseInsert(r.msg, nil)
	}
	rel := formRelation()
	now := time.Now()
	src := source()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if d := rel.Decode(tuples[i%len(tuples)], src, now); d.Err != nil {
			b.Fatal(d.Err)
		}
	}
}

// BenchmarkRow is the whole path, pgoutput bytes → JSON body, both ways.
func BenchmarkRow(b *testing.B) {
	rows := benchRows(b)
	buf := make([]byte, 0, 4096) // capture reuses its buffers
	row := make(Row, 0, 16)
	src := source()
	for _, enc := range []struct {
		name string
		fn   func(*formsv1.FormSubmission) ([]byte, error)
	}{
		{"protojson", func(ev *formsv1.FormSubmission) ([]byte, error) {
			return protojson.MarshalOptions{UseProtoNames: true}.Marshal(ev)
		}},
		{"AppendEvent", func(ev *formsv1.FormSubmission) ([]byte, error) { return stream.AppendEvent(buf[:0], ev) }},
	} {
		b.Run(enc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				r := rows[i%len(rows)]
				_, row, err := parseInsert(r.msg, row)
				if err != nil {
					b.Fatal(err)
				}
				d := r.rel.Decode(row, src, time.Now())
				if _, err := enc.fn(d.Event); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
