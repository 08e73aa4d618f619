package index

import (
	"slices"
	"strings"
	"testing"
)

func TestNameTerms(t *testing.T) {
	for _, tc := range []struct {
		name string
		want []string
	}{
		{"Sara Curtis", []string{"sara", "curtis"}},
		{"  ZOË  o'Brien-Smith ", []string{"zoe", "o", "brien", "smith"}},
		{"Sara sara", []string{"sara"}},
		{"", nil},
	} {
		if got := NameTerms(tc.name); !slices.Equal(got, tc.want) {
			t.Errorf("NameTerms(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
	long := NameTerms(strings.Repeat("x", 300))
	if len(long) != 1 || len(long[0]) > 40 || strings.ContainsAny(long[0], ".*> ") {
		t.Errorf("a 300-letter word is not one short key token: %v", long)
	}
	if got := NameTerms("Łukasz Müller"); len(got) != 2 || got[1] != "muller" {
		t.Errorf("NameTerms(Łukasz Müller) = %v", got)
	}
}

func TestTermsIgnoreCase(t *testing.T) {
	if EmailTerm("Sara.Curtis@Example.com ") != EmailTerm("sara.curtis@example.com") {
		t.Error("e-mail terms differ by case")
	}
	if strings.ContainsAny(EmailTerm("a+b@c.d"), "@+.") {
		t.Error("an e-mail term holds characters a KV key cannot")
	}
	for s, want := range map[string]bool{"34d9791a": true, "34d9791": false, "34D9791A": false, "34d9791g": false, strings.Repeat("a", 64): true, strings.Repeat("a", 65): false} {
		if IsHashPrefix(s) != want {
			t.Errorf("IsHashPrefix(%q) = %v", s, !want)
		}
	}
}
