package webauth

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// attempts limits sign-ins that fail, per client address and per user
// name: ten, then one every six seconds. A try holds a token while its
// bcrypt run lasts (so parallel guesses cannot all pass) and spends it only
// when it fails. Guessing passwords is then slow, and a flood of wrong ones
// costs no bcrypt run past the limit. (Behind a proxy every client has its
// address: the address's limit is then shared.)
type attempts struct {
	mu sync.Mutex
	m  map[string]*bucket
}

// bucket is one key's failures allowed, and the tries under way.
type bucket struct {
	lim      *rate.Limiter
	inFlight int
}

const (
	attemptsBurst = 10
	attemptsEvery = 6 * time.Second
	attemptsKeys  = 10000 // past this, idle buckets that have refilled go
)

func newAttempts() *attempts { return &attempts{m: map[string]*bucket{}} }

// bucketLocked is key's (a.mu held); names are hashed, so a long one costs
// no memory.
func (a *attempts) bucketLocked(key string) *bucket {
	sum := sha256.Sum256([]byte(key))
	k := hex.EncodeToString(sum[:12])
	if len(a.m) > attemptsKeys {
		for k, b := range a.m {
			if b.inFlight == 0 && b.lim.Tokens() >= attemptsBurst {
				delete(a.m, k)
			}
		}
	}
	b := a.m[k]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(rate.Every(attemptsEvery), attemptsBurst)}
		a.m[k] = b
	}
	return b
}

// try holds a token for a sign-in as name from remoteAddr, the address's
// checked first (a refused address makes no entry for the names it
// tries). false: refused. Otherwise call done with whether it succeeded.
func (a *attempts) try(name, remoteAddr string) (done func(ok bool), allowed bool) {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	free := func(b *bucket) bool { return b.lim.Tokens()-float64(b.inFlight) >= 1 }
	addr := a.bucketLocked("addr:" + host)
	if !free(addr) {
		return nil, false
	}
	user := a.bucketLocked("user:" + name)
	if !free(user) {
		return nil, false
	}
	addr.inFlight++
	user.inFlight++
	return func(ok bool) {
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, b := range []*bucket{addr, user} {
			b.inFlight--
			if !ok {
				b.lim.Allow()
			}
		}
	}, true
}
