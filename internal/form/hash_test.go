package form

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

var update = flag.Bool("update", false, "rewrite golden files")

func samples(t testing.TB) []Sample {
	t.Helper()
	s, err := Samples()
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 200 {
		t.Fatalf("got %d samples, want 200", len(s))
	}
	return s
}

func sampleHash(s Sample) string {
	cols := s.Columns()
	return Hash(cols, HashFields(cols, nil, nil))
}

// TestHashGolden pins the hash of every sample row: a change to the canonical
// encoding would re-ticket every request, so it must be deliberate (-update).
func TestHashGolden(t *testing.T) {
	var got bytes.Buffer
	for i, s := range samples(t) {
		fmt.Fprintf(&got, "%d %s %s\n", i+1, sampleHash(s), *s["newusername"])
	}
	golden := filepath.Join("testdata", "sample-hashes.golden")
	if *update {
		if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("hashes differ from %s (run with -update only if the encoding change is intended)", golden)
	}
}

// TestHashSaraCurtis recomputes the seed example's hash from the documented
// encoding, independently of Hash's code.
func TestHashSaraCurtis(t *testing.T) {
	s := samples(t)[0]
	if *s["newusername"] != "Sara Curtis" {
		t.Fatalf("line 1 is %q", *s["newusername"])
	}
	names := make([]string, 0, len(s))
	for k, v := range s {
		if v != nil {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	enc := "cowjacket.forms.v1/hash\n"
	for _, n := range names {
		enc += fmt.Sprintf("%d:%s%d:%s", len(n), n, len(*s[n]), *s[n])
	}
	sum := sha256.Sum256([]byte(enc))
	if want, got := hex.EncodeToString(sum[:]), sampleHash(s); got != want {
		t.Errorf("Sara Curtis hash = %s, want %s", got, want)
	}
}

func TestHashDoubleSubmissions(t *testing.T) {
	ss := samples(t)
	distinct := map[string]int{}
	for i, s := range ss {
		distinct[sampleHash(s)] = i + 1
	}
	if len(distinct) != 197 {
		t.Errorf("%d distinct hashes, want 197", len(distinct))
	}
	for _, pair := range [][2]int{{6, 51}, {18, 121}, {34, 200}} {
		if a, b := sampleHash(ss[pair[0]-1]), sampleHash(ss[pair[1]-1]); a != b {
			t.Errorf("lines %d and %d hash differently", pair[0], pair[1])
		}
	}
}

func TestHashProperties(t *testing.T) {
	cols := samples(t)[0].Columns()
	fields := HashFields(cols, nil, nil)
	base := Hash(cols, fields)

	t.Run("column order", func(t *testing.T) {
		shuffled := slices.Clone(cols)
		rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if got := Hash(shuffled, HashFields(shuffled, nil, nil)); got != base {
			t.Error("hash depends on column order")
		}
	})
	t.Run("null equals absent", func(t *testing.T) {
		withNull := append(slices.Clone(cols), &formsv1.Column{Name: "extra", Value: Null()})
		if got := Hash(withNull, HashFields(withNull, nil, nil)); got != base {
			t.Error("a NULL column changed the hash")
		}
	})
	t.Run("id excluded", func(t *testing.T) {
		withID := append([]*formsv1.Column{{Name: "id", Value: Text("7")}}, cols...)
		if got := Hash(withID, HashFields(withID, []string{"id"}, nil)); got != base {
			t.Error("the primary key changed the hash")
		}
	})
	t.Run("value change", func(t *testing.T) {
		changed := slices.Clone(cols)
		changed[0] = &formsv1.Column{Name: changed[0].Name, Value: Text("Sara Curtis ")}
		if Hash(changed, fields) == base {
			t.Error("a changed value kept the hash")
		}
	})
	t.Run("field boundary", func(t *testing.T) {
		a := []*formsv1.Column{{Name: "a", Value: Text("bc")}, {Name: "b", Value: Text("")}}
		b := []*formsv1.Column{{Name: "a", Value: Text("b")}, {Name: "b", Value: Text("c")}}
		if Hash(a, []string{"a", "b"}) == Hash(b, []string{"a", "b"}) {
			t.Error("values shifted across a field boundary hash alike")
		}
	})
	t.Run("configured fields", func(t *testing.T) {
		only := HashFields(cols, nil, []string{"emailaddress", "newusername", "emailaddress"})
		if !slices.Equal(only, []string{"emailaddress", "newusername"}) {
			t.Fatalf("fields = %v", only)
		}
		if Hash(cols, only) == base {
			t.Error("configured fields did not change the hash")
		}
	})
}

func FuzzHash(f *testing.F) {
	ss, err := Samples()
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range ss[:20] {
		f.Add(*s["newusername"], *s["emailaddress"], *s["handsetsandheadsets"], uint8(len(*s["newusername"])))
	}
	f.Fuzz(func(t *testing.T, a, b, c string, seed uint8) {
		cols := []*formsv1.Column{{Name: "a", Value: Text(a)}, {Name: "b", Value: Text(b)}, {Name: "c", Value: Text(c)}}
		h := Hash(cols, []string{"a", "b", "c"})
		if len(h) != 64 {
			t.Fatalf("hash length %d", len(h))
		}
		r := rand.New(rand.NewPCG(uint64(seed), 1))
		r.Shuffle(len(cols), func(i, j int) { cols[i], cols[j] = cols[j], cols[i] })
		if Hash(cols, []string{"c", "a", "b"}) != h {
			t.Fatal("order changed the hash")
		}
		if a != b && Hash([]*formsv1.Column{{Name: "a", Value: Text(b)}, {Name: "b", Value: Text(a)}, {Name: "c", Value: Text(c)}}, []string{"a", "b", "c"}) == h {
			t.Fatal("swapped values hash alike")
		}
	})
}

// HashPlan computes exactly Hash: on every sample (the golden file's rows),
// in any column order, with NULLs, absent and configured fields, and values
// of every kind.
func TestHashPlanIsHash(t *testing.T) {
	ts := timestamppb.New(time.Date(2025, 10, 24, 12, 0, 0, 500, time.UTC))
	kinds := []*formsv1.Value{Null(), Text("x"), Text(""), {Kind: &formsv1.Value_Integer{Integer: -42}},
		{Kind: &formsv1.Value_Number{Number: 1.5e-7}}, {Kind: &formsv1.Value_Decimal{Decimal: "NaN"}},
		{Kind: &formsv1.Value_Boolean{Boolean: true}}, {Kind: &formsv1.Value_Date{Date: "2025-10-24"}},
		{Kind: &formsv1.Value_Timestamp{Timestamp: ts}}, {Kind: &formsv1.Value_Raw{Raw: "{1,2}"}}, nil}
	r := rand.New(rand.NewPCG(7, 7))
	names := func(cols []*formsv1.Column) []string {
		out := make([]string, len(cols))
		for i, c := range cols {
			out[i] = c.GetName()
		}
		return out
	}
	check := func(cols []*formsv1.Column, pk, configured []string) {
		t.Helper()
		p := NewHashPlan(names(cols), pk, configured)
		want := HashFields(cols, pk, configured)
		if !slices.Equal(p.Fields(), want) {
			t.Fatalf("fields %v, want %v", p.Fields(), want)
		}
		for range 2 { // the reused state gives the same answer again
			if got, want := p.Hash(cols), Hash(cols, want); got != want {
				t.Fatalf("plan hash %s, Hash %s (columns %v)", got, want, cols)
			}
		}
	}
	for _, s := range samples(t) {
		cols := append([]*formsv1.Column{{Name: "id", Value: &formsv1.Value{Kind: &formsv1.Value_Integer{Integer: 9}}}}, s.Columns()...)
		check(cols, []string{"id"}, nil)
		r.Shuffle(len(cols), func(i, j int) { cols[i], cols[j] = cols[j], cols[i] })
		check(cols, []string{"id"}, nil)
		check(cols, nil, []string{"emailaddress", "newusername", "nosuchcolumn", "emailaddress"})
		check(cols, nil, []string{"emailaddress|email", "newusername"})
	}
	for range 500 {
		cols := make([]*formsv1.Column, r.IntN(6))
		for i, n := range r.Perm(8)[:len(cols)] { // column names are unique
			cols[i] = &formsv1.Column{Name: string(rune('a' + n)), Value: kinds[r.IntN(len(kinds))]}
		}
		check(cols, nil, nil)
		check(cols, []string{"a"}, nil)
		check(cols, nil, []string{"a|b", "c", "d|e|f", "h|a"})
	}
}

// TestHashFieldOtherNames: a field listed with its other names (old|new)
// hashes under its first name with the first of them the row holds, so a
// row hashes the same before and after its column was renamed, and as it
// did when the field named only the old column.
func TestHashFieldOtherNames(t *testing.T) {
	before := samples(t)[0].Columns()
	after := slices.Clone(before)
	for i, c := range after {
		if c.GetName() == "emailaddress" {
			after[i] = &formsv1.Column{Name: "email", Value: c.GetValue()}
		}
	}
	old := Hash(before, []string{"emailaddress", "newusername"})
	for name, cols := range map[string][]*formsv1.Column{"before the rename": before, "after it": after} {
		if got := Hash(cols, []string{"newusername", "emailaddress|email"}); got != old {
			t.Errorf("%s: %s, want the old name's hash %s", name, got, old)
		}
	}
	if Hash(after, []string{"emailaddress", "newusername"}) == old {
		t.Error("without the other name the renamed column still hashed (the test proves nothing)")
	}
	if f := HashFields(before, nil, []string{"newusername", "emailaddress|email", "emailaddress|mail"}); !slices.Equal(f, []string{"emailaddress|email", "newusername"}) {
		t.Errorf("fields %v: want one per name hashed under, in its order", f)
	}
}
