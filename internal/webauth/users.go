package webauth

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// Users are the accounts of a users file: htpasswd lines "name:hash" with
// bcrypt hashes ($2a$, $2b$ or $2y$, as `htpasswd -B` writes them).
type Users struct {
	hashes map[string][]byte
	// dummy is compared against for an unknown name, so the answer takes
	// as long as for a wrong password.
	dummy []byte
}

// LoadUsers reads a users file; any line that is not name:bcrypt-hash is
// an error naming its line.
func LoadUsers(path string) (*Users, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	u := &Users{hashes: map[string][]byte{}}
	maxCost := bcrypt.MinCost
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, hash, ok := strings.Cut(line, ":")
		if !ok || name == "" {
			return nil, fmt.Errorf("%s:%d: want name:bcrypt-hash", path, n)
		}
		cost, err := bcrypt.Cost([]byte(hash))
		if err != nil {
			return nil, fmt.Errorf("%s:%d: user %q: not a bcrypt hash (create it with htpasswd -B): %v", path, n, name, err)
		}
		u.hashes[name], maxCost = []byte(hash), max(maxCost, cost)
	}
	if len(u.hashes) == 0 {
		return nil, fmt.Errorf("%s: no users", path)
	}
	// At the file's own cost (htpasswd -B writes 5, Go's default is 10):
	// else the time would tell unknown names from known ones.
	u.dummy, _ = bcrypt.GenerateFromPassword([]byte("no such user"), maxCost)
	return u, nil
}

// Check says whether password is name's.
func (u *Users) Check(name, password string) bool {
	if u == nil {
		return false
	}
	h, ok := u.hashes[name]
	if !ok {
		_ = bcrypt.CompareHashAndPassword(u.dummy, []byte(password))
		return false
	}
	return bcrypt.CompareHashAndPassword(h, []byte(password)) == nil
}

// Has says whether name is a user.
func (u *Users) Has(name string) bool {
	if u == nil {
		return false
	}
	_, ok := u.hashes[name]
	return ok
}

// HashPassword is a users-file line for name (for the demo and tests).
func HashPassword(name, password string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return "", err
	}
	return name + ":" + string(h), nil
}
