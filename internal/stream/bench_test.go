package stream

import (
	"testing"

	"github.com/cowjacket/formjira/internal/form"
	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

func benchEvents(b *testing.B) []*formsv1.FormSubmission {
	b.Helper()
	samples, err := form.Samples()
	if err != nil {
		b.Fatal(err)
	}
	evs := make([]*formsv1.FormSubmission, len(samples))
	for i, s := range samples {
		evs[i] = sampleEvent(s, i)
	}
	return evs
}

// BenchmarkMarshalProtojson is the reference encoding, what capture once
// did per row.
func BenchmarkMarshalProtojson(b *testing.B) {
	evs := benchEvents(b)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		body, err := marshal.Marshal(evs[i%len(evs)])
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(body)))
	}
}

// BenchmarkAppendEvent is the encoder in use, into a reused buffer.
func BenchmarkAppendEvent(b *testing.B) {
	evs := benchEvents(b)
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		body, err := AppendEvent(buf[:0], evs[i%len(evs)])
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(body)))
	}
}

// BenchmarkEncoder is the encoder capture uses: with memory of the table.
func BenchmarkEncoder(b *testing.B) {
	evs := benchEvents(b)
	buf := make([]byte, 0, 4096)
	var enc Encoder
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		body, err := enc.Append(buf[:0], evs[i%len(evs)])
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(body)))
	}
}

// BenchmarkEncoderSmallRow is capture's encoder on the benchmark's small
// row (cmd/bench -row small): four short values, every other column NULL.
func BenchmarkEncoderSmallRow(b *testing.B) {
	ev := benchEvents(b)[0]
	for i, c := range ev.GetColumns() {
		if i > 4 && c.GetName() != "createdat" {
			c.Value = form.Null()
		}
	}
	buf := make([]byte, 0, 4096)
	var enc Encoder
	b.ReportAllocs()
	for b.Loop() {
		body, err := enc.Append(buf[:0], ev)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(body)))
	}
}
