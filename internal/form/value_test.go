package form

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

func TestDecodeText(t *testing.T) {
	tests := []struct {
		oid      uint32
		in       string
		want     string // Canonical
		wantKind string
	}{
		{oidText, "Sara Curtis", "Sara Curtis", "text"},
		{oidVarchar, "", "", "text"},
		{oidBPChar, "ab   ", "ab   ", "text"},
		{oidDate, "2025-10-28", "2025-10-28", "date"},
		{oidDate, "infinity", "infinity", "raw"},
		{oidDate, "-infinity", "-infinity", "raw"},
		{oidDate, "0044-03-15 BC", "0044-03-15 BC", "raw"},
		{oidDate, "294276-12-31", "294276-12-31", "raw"},
		{oidInt8, "9007199254740993", "9007199254740993", "integer"},
		{oidInt8, "-9223372036854775808", "-9223372036854775808", "integer"},
		{oidInt4, "x", "x", "raw"},
		{oidBool, "t", "true", "boolean"},
		{oidBool, "false", "false", "boolean"},
		{oidBool, "maybe", "maybe", "raw"},
		{oidNumeric, "5540221908.50", "5540221908.50", "decimal"},
		{oidNumeric, "-0.000100", "-0.000100", "decimal"},
		{oidNumeric, "NaN", "NaN", "decimal"},
		{oidNumeric, "Infinity", "Infinity", "decimal"},
		{oidNumeric, "-Infinity", "-Infinity", "decimal"},
		{oidNumeric, "1" + strings.Repeat("0", 400), "1" + strings.Repeat("0", 400), "decimal"},
		{oidNumeric, "1e5", "1e5", "raw"},
		{oidNumeric, "1.", "1.", "raw"},
		{oidFloat8, "1.5", "1.5", "number"},
		{oidFloat8, "NaN", "NaN", "number"},
		{oidFloat8, "-Infinity", "-Inf", "number"},
		{oidFloat8, "-0", "-0", "number"},
		{oidFloat4, "1.1", "1.1", "number"},
		{oidFloat8, "1e+308", "1e+308", "number"},
		{oidTimestampTZ, "2025-10-24 12:00:00.5+02", "2025-10-24T10:00:00.5Z", "timestamp"},
		{oidTimestampTZ, "2025-10-24 12:00:00+05:30", "2025-10-24T06:30:00Z", "timestamp"},
		{oidTimestampTZ, "1883-11-18 12:00:00+00:53:28", "1883-11-18T11:06:32Z", "timestamp"},
		{oidTimestamp, "2025-10-24 12:00:00", "2025-10-24T12:00:00Z", "timestamp"},
		{oidTimestamp, "infinity", "infinity", "raw"},
		{oidTimestamp, "0001-01-01 00:00:00 BC", "0001-01-01 00:00:00 BC", "raw"},
		{oidTimestampTZ, "0001-01-01 00:30:00+01", "0001-01-01 00:30:00+01", "raw"}, // year 0 in UTC
		{oidTimestamp, "10000-01-01 00:00:00", "10000-01-01 00:00:00", "raw"},
		{2950, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "raw"},
	}
	for _, tt := range tests {
		t.Run(TypeName(tt.oid)+"/"+tt.in, func(t *testing.T) {
			v := DecodeText(tt.oid, tt.in)
			got, ok := Canonical(v)
			if !ok || got != tt.want {
				t.Errorf("Canonical = %q, %v; want %q", got, ok, tt.want)
			}
			if kind := kindName(v); kind != tt.wantKind {
				t.Errorf("kind = %s, want %s", kind, tt.wantKind)
			}
		})
	}
	if _, ok := Canonical(Null()); ok {
		t.Error("NULL has a canonical text")
	}
}

// A Slot reused for values of different kinds gives each its own kind.
func TestSlotReuse(t *testing.T) {
	var s Slot
	for _, tt := range []struct {
		oid  uint32
		in   string
		kind string
	}{{oidInt4, "7", "integer"}, {oidText, "x", "text"}, {oidDate, "infinity", "raw"}, {oidDate, "2025-01-02", "date"}} {
		if got := Kind(s.Decode(tt.oid, tt.in)); got != tt.kind {
			t.Errorf("%s %q: kind %s, want %s", TypeName(tt.oid), tt.in, got, tt.kind)
		}
	}
	if v := s.Null(); !v.GetNull() {
		t.Error("Null is not null")
	}
}

func kindName(v *formsv1.Value) string { return Kind(v) }

// FuzzDecodeText: any text for any known type decodes to a value (never a
// poison row): text-like kinds keep the text exactly, valid UTF-8 stays
// valid, and a timestamp is one protojson can carry (years 1-9999).
func FuzzDecodeText(f *testing.F) {
	ss, err := Samples()
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range ss[:30] {
		for _, c := range FormColumns {
			if p := s[c.Name]; p != nil {
				oid := uint32(oidText)
				if c.Type == "date" {
					oid = oidDate
				}
				f.Add(oid, *p)
			}
		}
	}
	f.Add(uint32(oidTimestampTZ), "2025-10-24 12:00:00+02")
	f.Add(uint32(oidNumeric), "1e5")
	f.Add(uint32(oidTimestampTZ), "0001-01-01 00:30:00+01")
	f.Fuzz(func(t *testing.T, oid uint32, text string) {
		v := DecodeText(oid, text)
		s, ok := Canonical(v)
		if !ok {
			t.Fatal("decoded value has no canonical text")
		}
		if k := kindOf(v); (k == "text" || k == "raw" || k == "decimal" || k == "date") && s != text {
			t.Fatalf("text changed: %q → %q", text, s)
		}
		if utf8.ValidString(text) && !utf8.ValidString(s) {
			t.Fatalf("valid input became invalid UTF-8")
		}
		if ts := v.GetTimestamp(); ts != nil {
			if y := ts.AsTime().Year(); y < 1 || y > 9999 {
				t.Fatalf("%q became a timestamp in year %d", text, y)
			}
		}
	})
}

// isISODate agrees with time.Parse on every day of several years (leap
// and not) and on malformed input.
func TestIsISODate(t *testing.T) {
	for _, y := range []int{1, 1900, 2000, 2024, 2025, 9999} {
		for m := 1; m <= 13; m++ {
			for d := 0; d <= 32; d++ {
				s := fmt.Sprintf("%04d-%02d-%02d", y, m, d)
				_, err := time.Parse(time.DateOnly, s)
				if got := isISODate(s); got != (err == nil) {
					t.Errorf("%s: isISODate %v, time.Parse %v", s, got, err)
				}
			}
		}
	}
	for _, bad := range []string{"", "2025-1-01", "2025/01/01", "20250-01-01", "0000-01-01", "2025-01-0x", "infinity"} {
		if isISODate(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}
