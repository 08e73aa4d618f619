package webauth

import (
	"fmt"
	"testing"
)

// fail makes n failed sign-ins as name(i) from addr(i).
func fail(t *testing.T, a *attempts, n int, name, addr func(int) string) {
	t.Helper()
	for i := range n {
		done, ok := a.try(name(i), addr(i))
		if !ok {
			t.Fatalf("try %d of %d refused", i+1, n)
		}
		done(false)
	}
}

func fixed(s string) func(int) string { return func(int) string { return s } }

func each(format string) func(int) string {
	return func(i int) string { return fmt.Sprintf(format, i) }
}

// TestAttemptsLimitAddressAndName: ten failures from one address, or for
// one name, refuse the next; successes and tries under way count as they
// should; a refused address makes no entry for the names it sprays.
func TestAttemptsLimitAddressAndName(t *testing.T) {
	t.Run("address", func(t *testing.T) {
		a := newAttempts()
		fail(t, a, attemptsBurst, each("user%d"), fixed("192.0.2.1:4000"))
		if _, ok := a.try("someone-new", "192.0.2.1:4001"); ok {
			t.Fatal("an address past its failures may try a new name")
		}
		before := len(a.m)
		for i := range 500 {
			a.try(fmt.Sprintf("spray%d", i), "192.0.2.1:4002")
		}
		if len(a.m) != before {
			t.Errorf("a refused address grew the buckets from %d to %d", before, len(a.m))
		}
		if done, ok := a.try("user0", "198.51.100.7:1"); !ok {
			t.Error("another address is refused for a name with one failure")
		} else {
			done(true)
		}
	})
	t.Run("name", func(t *testing.T) {
		a := newAttempts()
		fail(t, a, attemptsBurst, fixed("alice"), each("192.0.2.%d:1"))
		if _, ok := a.try("alice", "203.0.113.9:1"); ok {
			t.Fatal("a name past its failures may be tried from a fresh address")
		}
		if done, ok := a.try("bob", "203.0.113.9:1"); !ok {
			t.Error("that address is refused for another name")
		} else {
			done(true)
		}
	})
	t.Run("successes spend nothing", func(t *testing.T) {
		a := newAttempts()
		for i := range 3 * attemptsBurst {
			done, ok := a.try("alice", "192.0.2.1:1")
			if !ok {
				t.Fatalf("success %d refused", i+1)
			}
			done(true)
		}
	})
	t.Run("tries under way hold their token", func(t *testing.T) {
		a := newAttempts()
		var dones []func(bool)
		for range attemptsBurst {
			done, ok := a.try("alice", "192.0.2.1:1")
			if !ok {
				t.Fatal("refused before the burst was held")
			}
			dones = append(dones, done)
		}
		if _, ok := a.try("alice", "192.0.2.1:1"); ok {
			t.Fatal("an eleventh try passed while ten were under way")
		}
		dones[0](true)
		if done, ok := a.try("alice", "192.0.2.1:1"); !ok {
			t.Error("a finished success did not give its token back")
		} else {
			done(true)
		}
	})
	t.Run("idle full buckets go past the bound", func(t *testing.T) {
		a := newAttempts()
		for i := range attemptsKeys + 10 {
			done, _ := a.try(fmt.Sprintf("user%d", i), "192.0.2.1:1")
			done(true)
		}
		if len(a.m) > attemptsKeys+1 {
			t.Errorf("%d buckets kept, want at most %d", len(a.m), attemptsKeys+1)
		}
	})
}
