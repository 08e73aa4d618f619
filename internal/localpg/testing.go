package localpg

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync/atomic"
	"testing"
)

// StartTB starts a throwaway server for one test (or benchmark), failing it
// if that is impossible, and stops the server in tb.Cleanup. Prefer one
// server per package (Main) and NewDatabase per test: a server takes about a
// second to initialise.
func StartTB(tb testing.TB) *Server {
	tb.Helper()
	return StartTBWith(tb, Options{})
}

// StartTBWith is StartTB with options.
func StartTBWith(tb testing.TB, opts Options) *Server {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*readyTimeout)
	defer cancel()
	s, err := Start(ctx, opts)
	if err != nil {
		tb.Fatalf("localpg: %v", err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Log(s.LogTail())
		}
		if err := s.Stop(); err != nil {
			tb.Errorf("localpg: stop: %v", err)
		}
	})
	return s
}

// Main starts one server for a test package, stores it in *srv, runs the
// tests and stops the server, returning the exit code:
//
//	var pg *localpg.Server
//
//	func TestMain(m *testing.M) { os.Exit(localpg.Main(m, &pg)) }
//
// If the server cannot start, no test runs and the code is 1 with the
// reason on stderr: integration tests fail rather than skip.
func Main(m *testing.M, srv **Server) int { return MainWith(m, srv, Options{}, nil) }

// MainWith is Main with options; started, when set, is called with the
// server before any test runs.
func MainWith(m *testing.M, srv **Server, opts Options, started func(*Server)) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*readyTimeout)
	s, err := Start(ctx, opts)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "localpg: %v\n", err)
		return 1
	}
	if started != nil {
		started(s)
	}
	*srv = s
	code := m.Run()
	if code != 0 {
		fmt.Fprintln(os.Stderr, s.LogTail())
	}
	if err := s.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "localpg: stop: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

var dbSeq atomic.Uint64

// NewDatabase creates a database named after the test, returns its DSN, and
// drops it in tb.Cleanup (ending its sessions and dropping its replication
// slots first), so tests sharing a server stay isolated.
func (s *Server) NewDatabase(tb testing.TB) string {
	tb.Helper()
	name := databaseName(tb.Name())
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	if err := s.CreateDatabase(ctx, name); err != nil {
		tb.Fatalf("localpg: %v", err)
	}
	tb.Cleanup(func() {
		if !s.Running() {
			return // stopped or killed by the test: nothing to leak into
		}
		ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
		defer cancel()
		if err := s.DropDatabase(ctx, name); err != nil {
			tb.Errorf("localpg: %v", err)
		}
	})
	return s.DSN(name)
}

// databaseName derives a valid, unique, recognisable name from a test name.
// The random part keeps a persistent server's leftovers from a crashed run
// from colliding.
func databaseName(test string) string {
	var b strings.Builder
	b.WriteString("t_")
	for _, r := range strings.ToLower(test) {
		if b.Len() >= 40 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	fmt.Fprintf(&b, "_%d_%04x", dbSeq.Add(1), rand.Uint32N(1<<16))
	return b.String()
}
