package webauth

import (
	"net"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// attempts limits failed sign-ins, per user name and per client address:
// ten, then one every six seconds. Guessing passwords is then slow, and a
// flood of wrong ones costs no bcrypt run past the limit. (Behind a proxy
// every client has its address: the limit is then shared.)
type attempts struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

const (
	attemptsBurst = 10
	attemptsEvery = 6 * time.Second
	attemptsKeys  = 10000 // forgotten all at once beyond this
)

func newAttempts() *attempts { return &attempts{m: map[string]*rate.Limiter{}} }

func (a *attempts) limiters(name, remoteAddr string) [2]*rate.Limiter {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.m) > attemptsKeys {
		a.m = map[string]*rate.Limiter{}
	}
	var out [2]*rate.Limiter
	for i, k := range []string{"user:" + name, "addr:" + host} {
		l := a.m[k]
		if l == nil {
			l = rate.NewLimiter(rate.Every(attemptsEvery), attemptsBurst)
			a.m[k] = l
		}
		out[i] = l
	}
	return out
}

// allowed reports whether a sign-in as name from remoteAddr may be tried.
func (a *attempts) allowed(name, remoteAddr string) bool {
	for _, l := range a.limiters(name, remoteAddr) {
		if l.Tokens() < 1 {
			return false
		}
	}
	return true
}

// failed counts a failed sign-in.
func (a *attempts) failed(name, remoteAddr string) {
	for _, l := range a.limiters(name, remoteAddr) {
		l.Allow()
	}
}
