package webauth

import (
	"crypto/rand"
	"encoding/base64"
	"sync"
	"time"
)

// Roles.
const (
	Viewer   = "viewer"
	Operator = "operator"
)

// User is who is signed in.
type User struct {
	Name   string   `json:"name"`
	Email  string   `json:"email,omitempty"`
	Role   string   `json:"role"`
	Via    string   `json:"via"` // password, oidc, basic
	Groups []string `json:"groups,omitempty"`
}

// Operator says whether u may replay.
func (u *User) Operator() bool { return u != nil && u.Role == Operator }

// session is a browser's sign-in, kept in memory: a restart signs
// everyone out.
type session struct {
	user    User
	csrf    string
	idToken string // OIDC: for the provider's logout
	expires time.Time
}

type sessions struct {
	mu  sync.Mutex
	m   map[string]*session
	ttl time.Duration
}

func newSessions(ttl time.Duration) *sessions { return &sessions{m: map[string]*session{}, ttl: ttl} }

func (s *sessions) create(u User, idToken string) (string, *session) {
	id := randomToken()
	ss := &session{user: u, csrf: randomToken(), idToken: idToken, expires: time.Now().Add(s.ttl)}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for k, v := range s.m {
		if now.After(v.expires) {
			delete(s.m, k)
		}
	}
	s.m[id] = ss
	return id, ss
}

func (s *sessions) get(id string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.m[id]
	if ss == nil || time.Now().After(ss.expires) {
		delete(s.m, id)
		return nil
	}
	return ss
}

func (s *sessions) delete(id string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.m[id]
	delete(s.m, id)
	return ss
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
