package stream

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cowjacket/formjira/internal/form"
	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

// checkJSON holds appendJSON to protojson: the bytes decode (with
// Unmarshal, which is protojson) to the same message, and are the same JSON
// value as protojson's own encoding.
func checkJSON(t *testing.T, ev *formsv1.FormSubmission) {
	t.Helper()
	want, werr := marshal.Marshal(ev)
	got, err := appendJSON(nil, ev)
	if werr != nil {
		if err == nil {
			t.Fatalf("protojson refuses the event (%v), appendJSON wrote %s", werr, got)
		}
		return
	}
	if err != nil {
		t.Fatalf("appendJSON: %v (protojson: %s)", err, want)
	}
	back, err := Unmarshal(got)
	if err != nil {
		t.Fatalf("protojson cannot read %s: %v", got, err)
	}
	if !proto.Equal(back, ev) {
		t.Fatalf("round trip changed the event:\n got %v\nwant %v", back, ev)
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("invalid JSON %s: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("JSON differs from protojson:\n got %s\nwant %s", got, want)
	}
}

func TestAppendJSONMatchesProtojsonOnSamples(t *testing.T) {
	samples, err := form.Samples()
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range samples {
		checkJSON(t, sampleEvent(s, i))
	}
}

func TestAppendJSONEdgeCases(t *testing.T) {
	ts := func(s int64, n int32) *timestamppb.Timestamp { return &timestamppb.Timestamp{Seconds: s, Nanos: n} }
	val := func(v *formsv1.Value) *formsv1.Column { return &formsv1.Column{Name: "c", PgType: "x", Value: v} }
	tests := map[string]*formsv1.FormSubmission{
		"empty": {},
		"every kind": {SchemaVersion: 1, Hash: "ab", HashFields: []string{"a", "b"}, Columns: []*formsv1.Column{
			val(&formsv1.Value{Kind: &formsv1.Value_Null{Null: true}}),
			val(&formsv1.Value{Kind: &formsv1.Value_Null{}}),
			val(&formsv1.Value{Kind: &formsv1.Value_Text{Text: ""}}),
			val(&formsv1.Value{Kind: &formsv1.Value_Text{Text: "quote \" backslash \\ nl \n cr \r tab \t bell \a nul \x00 del \x7f <>&  é 😀 \u2028"}}),
			val(&formsv1.Value{Kind: &formsv1.Value_Integer{Integer: math.MinInt64}}),
			val(&formsv1.Value{Kind: &formsv1.Value_Integer{Integer: 0}}),
			val(&formsv1.Value{Kind: &formsv1.Value_Number{Number: 0}}),
			val(&formsv1.Value{Kind: &formsv1.Value_Number{Number: -1.5e-7}}),
			val(&formsv1.Value{Kind: &formsv1.Value_Number{Number: 1e21}}),
			val(&formsv1.Value{Kind: &formsv1.Value_Number{Number: 123456.789}}),
			val(&formsv1.Value{Kind: &formsv1.Value_Number{Number: math.NaN()}}),
			val(&formsv1.Value{Kind: &formsv1.Value_Number{Number: math.Inf(1)}}),
			val(&formsv1.Value{Kind: &formsv1.Value_Number{Number: math.Inf(-1)}}),
			val(&formsv1.Value{Kind: &formsv1.Value_Decimal{Decimal: "-0.000100"}}),
			val(&formsv1.Value{Kind: &formsv1.Value_Boolean{}}),
			val(&formsv1.Value{Kind: &formsv1.Value_Date{Date: "2025-10-15"}}),
			val(&formsv1.Value{Kind: &formsv1.Value_Timestamp{Timestamp: ts(0, 0)}}),
			val(&formsv1.Value{Kind: &formsv1.Value_Timestamp{Timestamp: ts(-62135596800, 1)}}),
			val(&formsv1.Value{Kind: &formsv1.Value_Timestamp{Timestamp: ts(253402300799, 999999999)}}),
			val(&formsv1.Value{Kind: &formsv1.Value_Timestamp{Timestamp: ts(1760520600, 120000000)}}),
			val(&formsv1.Value{Kind: &formsv1.Value_Timestamp{Timestamp: ts(1760520600, 123456000)}}),
			val(&formsv1.Value{Kind: &formsv1.Value_Raw{Raw: "{1,2}"}}),
			val(&formsv1.Value{}),
			val(nil),
			{},
		}, Source: &formsv1.Source{PrimaryKey: []*formsv1.Column{val(&formsv1.Value{Kind: &formsv1.Value_Integer{Integer: 7}})}, Xid: math.MaxUint32},
			CapturedAt: ts(1, 0)},
		"empty source":           {Source: &formsv1.Source{}},
		"timestamp out of range": {CapturedAt: ts(253402300800, 0)},
		"negative nanos":         {CapturedAt: ts(5, -1)},
		"invalid UTF-8":          {Hash: "a\xffb"},
		"invalid UTF-8 value":    {Columns: []*formsv1.Column{val(&formsv1.Value{Kind: &formsv1.Value_Text{Text: "\xc3"}})}},
	}
	for name, ev := range tests {
		t.Run(name, func(t *testing.T) { checkJSON(t, ev) })
	}
}

func FuzzAppendJSON(f *testing.F) {
	f.Add("Sara Curtis", "text", int64(42), 1.5, int64(1760520600), int32(123000000), true)
	f.Add("\x00\"\\\u2028\xff", "", int64(-1), math.Inf(1), int64(-62135596801), int32(-1), false)
	f.Fuzz(func(t *testing.T, s, typ string, i int64, x float64, sec int64, nanos int32, b bool) {
		ev := &formsv1.FormSubmission{Hash: s, HashFields: []string{s, typ}, Columns: []*formsv1.Column{
			{Name: s, PgType: typ, Value: &formsv1.Value{Kind: &formsv1.Value_Text{Text: s}}},
			{Name: "i", Value: &formsv1.Value{Kind: &formsv1.Value_Integer{Integer: i}}},
			{Name: "x", Value: &formsv1.Value{Kind: &formsv1.Value_Number{Number: x}}},
			{Name: "b", Value: &formsv1.Value{Kind: &formsv1.Value_Boolean{Boolean: b}}},
			{Name: "t", Value: &formsv1.Value{Kind: &formsv1.Value_Timestamp{Timestamp: &timestamppb.Timestamp{Seconds: sec, Nanos: nanos}}}},
		}, Source: &formsv1.Source{Slot: typ, Xid: uint32(i)}, CapturedAt: &timestamppb.Timestamp{Seconds: sec, Nanos: nanos}}
		checkJSON(t, ev)
	})
}

// sampleEvent is the event capture makes of sample s, stored with id 1000+i.
func sampleEvent(s form.Sample, i int) *formsv1.FormSubmission {
	src := &formsv1.Source{Origin: "capture", Database: "forms", Schema: "public", Table: "form_submissions",
		CommitLsn: "0/16B3748", CommitTime: timestamppb.New(time.Date(2025, 10, 15, 9, 30, 0, 123456000, time.UTC)), Xid: uint32(700 + i), Slot: "cowjacket"}
	id := &formsv1.Column{Name: "id", PgType: "int8", Value: &formsv1.Value{Kind: &formsv1.Value_Integer{Integer: int64(1000 + i)}}}
	cols := append([]*formsv1.Column{id}, s.Columns()...)
	return form.NewEvent(cols, []string{"id"}, nil, src, time.Date(2025, 10, 15, 9, 30, 1, int(i)*1000, time.UTC))
}

// plain8 flags exactly the bytes quote must look at, in every position.
func TestPlain8(t *testing.T) {
	for pos := range 8 {
		for c := range 256 {
			b := []byte("abcdefgh")
			b[pos] = byte(c)
			want := c >= 0x20 && c < 0x80 && c != '"' && c != '\\'
			if got := plain8(string(b)); got != want {
				t.Errorf("byte %#x at %d: plain8 = %v", c, pos, got)
			}
		}
	}
}

// appendDateTime writes what time.Format does over the whole range a
// Timestamp holds.
func TestAppendDateTime(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const minSec, maxSec = -62135596800, 253402300799
	secs := []int64{minSec, maxSec, 0, -1, 86399, 86400, 951782400 /* 2000-02-29 */, 4107542400 /* 2100-03-01 */}
	for range 20000 {
		secs = append(secs, minSec+r.Int64N(maxSec-minSec+1))
	}
	for _, s := range secs {
		want := time.Unix(s, 0).UTC().Format("2006-01-02T15:04:05")
		if got := string(appendDateTime(nil, s)); got != want {
			t.Fatalf("%d: %s, want %s", s, got, want)
		}
	}
}

// genEvent is a random event using every field and every Value kind, with
// strings that need escaping, non-ASCII, and now and then invalid UTF-8
// or an out-of-range timestamp (which protojson refuses).
func genEvent(r *rand.Rand) *formsv1.FormSubmission {
	str := func() string {
		pieces := []string{"", "a", "Sara Curtis", "quote\"", `back\slash`, "nl\n", "tab\t", "\x00", "\x1f", "\x7f", "é", "😀", "\u2028", "<&>", "0123456789abcdef", "'single'"}
		var b strings.Builder
		for range r.IntN(5) {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		if r.IntN(200) == 0 {
			b.WriteString("\xff")
		}
		return b.String()
	}
	ts := func() *timestamppb.Timestamp {
		const minSec, maxSec = -62135596800, 253402300799
		t := &timestamppb.Timestamp{Seconds: minSec + r.Int64N(maxSec-minSec+1), Nanos: int32(r.IntN(1_000_000_000))}
		switch r.IntN(6) {
		case 0:
			t.Nanos = 0
		case 1:
			t.Nanos -= t.Nanos % 1_000_000
		case 2:
			t.Nanos -= t.Nanos % 1_000
		}
		if r.IntN(300) == 0 {
			t.Seconds = maxSec + 1
		}
		return t
	}
	floats := []float64{0, math.Copysign(0, -1), 1.5, -1e-7, 1e21, 123456.789, math.MaxFloat64, math.SmallestNonzeroFloat64, math.NaN(), math.Inf(1), math.Inf(-1)}
	value := func() *formsv1.Value {
		switch r.IntN(12) {
		case 0:
			return &formsv1.Value{Kind: &formsv1.Value_Null{Null: r.IntN(2) == 0}}
		case 1:
			return &formsv1.Value{Kind: &formsv1.Value_Text{Text: str()}}
		case 2:
			return &formsv1.Value{Kind: &formsv1.Value_Integer{Integer: int64(r.Uint64())}}
		case 3:
			return &formsv1.Value{Kind: &formsv1.Value_Number{Number: floats[r.IntN(len(floats))] * float64(r.IntN(3))}}
		case 4:
			return &formsv1.Value{Kind: &formsv1.Value_Number{Number: math.Float64frombits(r.Uint64())}}
		case 5:
			return &formsv1.Value{Kind: &formsv1.Value_Decimal{Decimal: []string{"NaN", "Infinity", "-Infinity", "-0.000100", "1" + strings.Repeat("0", 400)}[r.IntN(5)]}}
		case 6:
			return &formsv1.Value{Kind: &formsv1.Value_Boolean{Boolean: r.IntN(2) == 0}}
		case 7:
			return &formsv1.Value{Kind: &formsv1.Value_Date{Date: "2025-10-15"}}
		case 8:
			return &formsv1.Value{Kind: &formsv1.Value_Timestamp{Timestamp: ts()}}
		case 9:
			return &formsv1.Value{Kind: &formsv1.Value_Raw{Raw: str()}}
		case 10:
			return &formsv1.Value{} // no kind set
		}
		return nil
	}
	cols := func(n int) []*formsv1.Column {
		var out []*formsv1.Column
		for i := range n {
			out = append(out, &formsv1.Column{Name: []string{"id", "newusername", "Comments", str()}[min(i, 3)], PgType: []string{"", "text", "int8", "oid:16999"}[r.IntN(4)], Value: value()})
		}
		return out
	}
	ev := &formsv1.FormSubmission{SchemaVersion: uint32(r.IntN(3)), Hash: str(), Columns: cols(r.IntN(6))}
	for range r.IntN(4) {
		ev.HashFields = append(ev.HashFields, str())
	}
	if r.IntN(4) > 0 {
		ev.Source = &formsv1.Source{Origin: str(), Database: str(), Schema: str(), Table: str(), PrimaryKey: cols(r.IntN(2)),
			CommitLsn: str(), Xid: r.Uint32(), Slot: str()}
		if r.IntN(2) == 0 {
			ev.Source.CommitTime = ts()
		}
	}
	if r.IntN(3) > 0 {
		ev.CapturedAt = ts()
	}
	return ev
}

// Property: over thousands of generated events of every kind, both the
// plain encoder and a long-lived Encoder (whose memory sees one event after
// another) write protojson's JSON value, or refuse what protojson refuses.
func TestAppendJSONMatchesProtojsonOnGeneratedEvents(t *testing.T) {
	r := rand.New(rand.NewPCG(10, 20))
	var enc Encoder
	for i := range 5000 {
		ev := genEvent(r)
		checkJSON(t, ev)
		want, werr := marshal.Marshal(ev)
		got, err := enc.Append(nil, ev)
		if (werr != nil) != (err != nil) {
			t.Fatalf("event %d: Encoder error %v, protojson %v", i, err, werr)
		}
		if err == nil {
			sameJSON(t, got, want)
		}
	}
}

// Samples one after another through one Encoder (its memory hits) give
// AppendEvent's bytes.
func TestEncoderIsAppendEvent(t *testing.T) {
	samples, err := form.Samples()
	if err != nil {
		t.Fatal(err)
	}
	var enc Encoder
	for i, s := range samples {
		ev := sampleEvent(s, i)
		want, _ := AppendEvent(nil, ev)
		got, err := enc.Append(nil, ev)
		if err != nil || string(got) != string(want) {
			t.Fatalf("sample %d: Encoder wrote %s (%v), want %s", i, got, err, want)
		}
	}
}

func sameJSON(t *testing.T, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("invalid JSON %s: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("JSON differs from protojson:\n got %s\nwant %s", got, want)
	}
}
