package stream

import (
	"encoding/json"
	"math"
	"reflect"
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
