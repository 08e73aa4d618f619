package webauth_test

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/cowjacket/formjira/internal/webauth"
)

// TestNextStaysOnTheSite: after sign-in the browser goes to next only when
// it is a path of this site; browsers read "\" as "/" and drop tabs, so
// those forms of "//other.site" go to "/".
func TestNextStaysOnTheSite(t *testing.T) {
	file := usersFile(t, "oper:oper-pass")
	c := newConsole(t, func(string) webauth.Config { return webauth.Config{UsersFile: file} })
	for next, want := range map[string]string{
		"/dlq?x=1":             "/dlq?x=1",
		`/\evil.example/x`:     "/",
		"/\t/evil.example/x":   "/",
		"//evil.example":       "/",
		"https://evil.example": "/",
		"/%5Cevil.example":     "/%5Cevil.example", // escaped: a path here
	} {
		b := c.browser()
		b.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		req, _ := http.NewRequest(http.MethodPost, c.srv.URL+"/login", strings.NewReader(url.Values{"user": {"oper"}, "password": {"oper-pass"}, "next": {next}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		res, err := b.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if loc := res.Header.Get("Location"); loc != want {
			t.Errorf("next=%q: Location %q, want %q", next, loc, want)
		}
	}
}

// TestSameOriginBehindAProxy: a proxy that forwards its upstream's Host
// (nginx's default) must not make the console refuse its own pages' POSTs:
// the browser's Sec-Fetch-Site says same-origin, or (older browsers) the
// Origin is CONSOLE_URL's. Another site's Origin is still refused.
func TestSameOriginBehindAProxy(t *testing.T) {
	file := usersFile(t, "oper:oper-pass")
	c := newConsole(t, func(string) webauth.Config {
		return webauth.Config{UsersFile: file, URL: "https://console.example.com"}
	})
	login := url.Values{"user": {"oper"}, "password": {"oper-pass"}}
	for _, tc := range []struct {
		name string
		hdr  map[string]string
		want int
	}{
		{"Sec-Fetch-Site same-origin", map[string]string{"Origin": "https://proxy-name.example", "Sec-Fetch-Site": "same-origin"}, http.StatusOK},
		{"the Origin is CONSOLE_URL's", map[string]string{"Origin": "https://console.example.com"}, http.StatusOK},
		{"another site's Origin", map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"Sec-Fetch-Site cross-site", map[string]string{"Origin": "https://console.example.com", "Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
	} {
		if st, _ := c.do(c.browser(), http.MethodPost, "/login", login, tc.hdr); st != tc.want {
			t.Errorf("%s: sign-in %d, want %d", tc.name, st, tc.want)
		}
	}
}

// TestUnknownNameTakesAsLong: a wrong password takes as long for a name
// that is not in the users file as for one that is, whatever cost the
// file's hashes have (htpasswd -B writes 5, Go's default is 10).
func TestUnknownNameTakesAsLong(t *testing.T) {
	h, err := bcrypt.GenerateFromPassword([]byte("pw"), 5)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(path, []byte("oper:"+string(h)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	u, err := webauth.LoadUsers(path)
	if err != nil {
		t.Fatal(err)
	}
	took := func(name string) time.Duration {
		best := time.Hour
		for range 5 {
			start := time.Now()
			u.Check(name, "wrong")
			best = min(best, time.Since(start))
		}
		return best
	}
	if known, unknown := took("oper"), took("nobody"); unknown > 4*known {
		t.Errorf("a wrong password takes %v for a user, %v for an unknown name: names can be told apart", known, unknown)
	}
}

// TestFailedSignInsAreLimited: ten wrong passwords, then even the right
// one is refused for a while (429 with Retry-After), by form and by Basic
// auth.
func TestFailedSignInsAreLimited(t *testing.T) {
	// The cheapest hash: ten tries must be done well within the limit's
	// six seconds a token, even under the race detector.
	h, err := bcrypt.GenerateFromPassword([]byte("oper-pass"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(file, []byte("oper:"+string(h)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newConsole(t, func(string) webauth.Config { return webauth.Config{UsersFile: file} })
	b := c.browser()
	for i := range 10 {
		if st, _ := c.do(b, http.MethodPost, "/login", url.Values{"user": {"oper"}, "password": {"guess"}}, nil); st != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d, want 401", i+1, st)
		}
	}
	if st, body := c.do(b, http.MethodPost, "/login", url.Values{"user": {"oper"}, "password": {"oper-pass"}}, nil); st != http.StatusTooManyRequests || !strings.Contains(body, "Too many failed sign-ins") {
		t.Errorf("the right password after ten wrong ones: %d %q, want 429", st, body)
	}
	if st, _ := c.do(b, http.MethodGet, "/api/whoami", nil, map[string]string{"basic": "oper:oper-pass"}); st != http.StatusTooManyRequests {
		t.Errorf("Basic auth after ten wrong passwords: %d, want 429", st)
	}
}

// TestParallelGuessesAreLimited: guesses sent at once cannot all pass
// the limit before any has failed: each takes its token before bcrypt.
func TestParallelGuessesAreLimited(t *testing.T) {
	usersAt := func(cost int) string {
		h, err := bcrypt.GenerateFromPassword([]byte("oper-pass"), cost)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "users")
		if err := os.WriteFile(file, []byte("oper:"+string(h)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return file
	}
	// A bcrypt run long enough for the guesses to overlap.
	slow := usersAt(8)
	c := newConsole(t, func(string) webauth.Config { return webauth.Config{UsersFile: slow} })
	statuses := make(chan int, 40)
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			st, _ := c.do(c.browser(), http.MethodGet, "/api/whoami", nil, map[string]string{"basic": "oper:guess"})
			statuses <- st
		})
	}
	wg.Wait()
	close(statuses)
	tried := 0
	for st := range statuses {
		if st == http.StatusUnauthorized {
			tried++
		}
	}
	if tried > 11 {
		t.Errorf("%d of 40 parallel guesses were tried, want at most the limit's 10 (and a refill)", tried)
	}
	// A right password is not counted as a failure: it gives its token back.
	fast := usersAt(bcrypt.MinCost)
	c2 := newConsole(t, func(string) webauth.Config { return webauth.Config{UsersFile: fast} })
	for i := range 15 {
		if st, _ := c2.do(c2.browser(), http.MethodGet, "/api/whoami", nil, map[string]string{"basic": "oper:oper-pass"}); st != http.StatusOK {
			t.Fatalf("sign-in %d with the right password: %d", i+1, st)
		}
	}
}
