// Package testsupport holds the helpers every package's tests share: a free
// loopback address, polling for a condition, a concurrency-safe log buffer
// and reading a /metrics page. Test fixtures of a domain (the Jira sandbox,
// a private Postgres, an in-process NATS) live in their own packages.
package testsupport

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer safe for concurrent writers: the log sink tests
// assert on while services write from many goroutines. The zero value is
// empty and ready.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Reset empties the buffer.
func (s *Buffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}
