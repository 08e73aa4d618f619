package accounts

import (
	"strconv"
	"sync"
	"testing"
)

// Reads of an account race with no write to it: the sandbox serves
// concurrent requests (the race detector fails this test otherwise).
func TestDirectoryIsSafeForConcurrentUse(t *testing.T) {
	d := New(Account{AccountID: BotAccountID, Email: "bot@example.com"}, Desk{ID: "4"},
		[]Account{{Email: "ada@example.com", DisplayName: "Ada"}}, nil)
	ada, ok := d.ByEmail("ada@example.com")
	if !ok {
		t.Fatal("no account for ada@example.com")
	}
	const n = 200
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range n {
			d.AddToDesk(strconv.Itoa(i), ada.AccountID)
		}
	})
	wg.Go(func() {
		for range n {
			if a, created := d.Add("ADA@example.com", "Ada"); created || a.AccountID != ada.AccountID {
				t.Errorf("Add of an existing e-mail: %+v, created %v", a, created)
				return
			}
		}
	})
	wg.Go(func() {
		for range n {
			d.Get(ada.AccountID)
			d.All()
		}
	})
	wg.Wait()
	if a, _ := d.Get(ada.AccountID); len(a.ServiceDesks) != n {
		t.Errorf("on %d desks, want %d", len(a.ServiceDesks), n)
	}
}
