package trace

import "testing"

func TestParse(t *testing.T) {
	for _, tc := range []struct{ q, kind, term string }{
		{"id=17", KindID, "17"},
		{" ID= 17 ", KindID, "17"},
		{"Sara.Curtis@Example.com", KindEmail, "sara.curtis@example.com"},
		{"CP-123", KindJiraKey, "CP-123"},
		{"cp-7", KindJiraKey, "CP-7"},
		{"34D9791A", KindHash, "34d9791a"},
		{"34d9791aa6d6bf3d750239bbce22c20990f26afcb9659dca2b1916e22a4b6a17", KindHash, "34d9791aa6d6bf3d750239bbce22c20990f26afcb9659dca2b1916e22a4b6a17"},
		{"34d9791", KindName, "34d9791"},
		{"Sara Curtis", KindName, "Sara Curtis"},
	} {
		if got := Parse(tc.q); got.Kind != tc.kind || got.Term != tc.term {
			t.Errorf("Parse(%q) = %s %q, want %s %q", tc.q, got.Kind, got.Term, tc.kind, tc.term)
		}
	}
}
