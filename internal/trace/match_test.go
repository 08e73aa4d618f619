package trace

import (
	"testing"

	"github.com/cowjacket/formjira/internal/deadletters"
)

// TestMatchesEntryHashQuery: a hash query matches dead letters by hash
// prefix; only one of letters a–f alone may also be a name, as the index
// lookup has it.
func TestMatchesEntryHashQuery(t *testing.T) {
	for _, tc := range []struct {
		query, hash, name string
		want              bool
	}{
		{"34d9791a", "34d9791aa6d6", "Ann Lee", true},
		{"34d9791a", "ffff0000", "Ann Lee", false},
		{"abcdef12", "ffff0000", "Abcdef12", false}, // digits: a hash, never a name
		{"fabaceae", "ffff0000", "Ann Fabaceae", true},
		{"fabaceae", "ffff0000", "Ann Lee", false},
	} {
		q := Parse(tc.query)
		if q.Kind != KindHash {
			t.Fatalf("%q parsed as %s, want a hash query", tc.query, q.Kind)
		}
		if got := matchesEntry(q, &deadletters.Entry{Hash: tc.hash, Name: tc.name}); got != tc.want {
			t.Errorf("query %q against hash %s, name %q: %v, want %v", tc.query, tc.hash, tc.name, got, tc.want)
		}
	}
}
