package form

import (
	"errors"
	"testing"
	"unicode/utf8"

	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

func TestDecodeText(t *testing.T) {
	tests := []struct {
		oid      uint32
		in       string
		want     string // Canonical
		wantKind string
		err      bool
	}{
		{oidText, "Sara Curtis", "Sara Curtis", "text", false},
		{oidVarchar, "", "", "text", false},
		{oidDate, "2025-10-28", "2025-10-28", "date", false},
		{oidDate, "infinity", "", "", true},
		{oidDate, "0044-03-15 BC", "", "", true},
		{oidInt8, "9007199254740993", "9007199254740993", "integer", false},
		{oidInt4, "x", "", "", true},
		{oidBool, "t", "true", "boolean", false},
		{oidBool, "maybe", "", "", true},
		{oidNumeric, "5540221908.50", "5540221908.50", "decimal", false},
		{oidFloat8, "1.5", "1.5", "number", false},
		{oidTimestampTZ, "2025-10-24 12:00:00.5+02", "2025-10-24T10:00:00.5Z", "timestamp", false},
		{oidTimestampTZ, "2025-10-24 12:00:00+05:30", "2025-10-24T06:30:00Z", "timestamp", false},
		{oidTimestamp, "2025-10-24 12:00:00", "2025-10-24T12:00:00Z", "timestamp", false},
		{2950, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "raw", false},
	}
	for _, tt := range tests {
		t.Run(TypeName(tt.oid)+"/"+tt.in, func(t *testing.T) {
			v, err := DecodeText(tt.oid, tt.in)
			if tt.err {
				if !errors.Is(err, ErrDecode) {
					t.Fatalf("err = %v, want ErrDecode", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
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

func kindName(v *formsv1.Value) string { return Kind(v) }

// FuzzDecodeText: any text for any known type either decodes to a value whose
// canonical form is stable under a second decode, or fails with ErrDecode.
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
	f.Fuzz(func(t *testing.T, oid uint32, text string) {
		v, err := DecodeText(oid, text)
		if err != nil {
			if !errors.Is(err, ErrDecode) {
				t.Fatalf("error not ErrDecode: %v", err)
			}
			return
		}
		s, ok := Canonical(v)
		if !ok {
			t.Fatal("decoded value has no canonical text")
		}
		if kindOf(v) == "text" && s != text {
			t.Fatalf("text changed: %q → %q", text, s)
		}
		if utf8.ValidString(text) && !utf8.ValidString(s) {
			t.Fatalf("valid input became invalid UTF-8")
		}
	})
}
