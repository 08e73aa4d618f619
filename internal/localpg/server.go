// Package localpg runs a private PostgreSQL server from the installed
// binaries, for integration tests, benchmarks and the local demo.
//
// The server listens on 127.0.0.1 only, trusts every local connection
// (superuser "postgres", no password, replication allowed) and runs with
// wal_level=logical and fsync=off. With Options.TLS it also speaks TLS, and
// the roles named there may connect only over it, with a client
// certificate and their password. When the process runs as root, the server
// runs as the "postgres" user, because PostgreSQL refuses to run as root.
//
// One server per test package is the intended use, each test taking its own
// database from NewDatabase; see Main.
package localpg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Options configures Start. The zero value is a throwaway server on a free
// port.
type Options struct {
	// DataDir is the data directory. Empty means a fresh temporary directory
	// that Stop removes. Otherwise it persists: initdb runs only when it holds
	// no cluster yet, and later Starts reuse it (the demo resumes this way).
	DataDir string
	// Port on 127.0.0.1; 0 picks a free one (kept across Restart).
	Port int
	// Log, when set, receives a copy of initdb's and the server's output.
	// The output always goes to DataDir+".log" too.
	Log io.Writer
	// Settings are extra postgresql.conf parameters; they override the
	// defaults. Values are quoted for you.
	Settings map[string]string
	// TLS, when set, turns ssl on.
	TLS *TLS
}

// TLS is the server's side of TLS, PEM-encoded.
type TLS struct {
	CertPEM, KeyPEM []byte // the server's certificate (for 127.0.0.1) and key
	CAPEM           []byte // the CA whose client certificates it accepts
	// Roles connect over TCP only with TLS, a client certificate whose
	// common name is the role (clientcert=verify-full) and their password
	// (scram-sha-256), as a production pg_hba.conf would have it.
	Roles []string
}

// readyTimeout bounds how long Start and Restart wait for connections.
const readyTimeout = 30 * time.Second

// Server is a running (or stopped) private PostgreSQL server. Its methods
// are safe for concurrent use.
type Server struct {
	bin      binaries
	acct     account
	dataDir  string
	sockDir  string
	logPath  string
	tempBase string // removed by Stop; "" for a persistent DataDir
	workDir  string // postgres's cwd: must be reachable by its user
	port     int
	log      io.Writer
	settings map[string]string
	tls      *TLS

	mu      sync.Mutex
	proc    *process // nil when not running
	stopped bool
}

// Start initialises (if needed) and starts a server, returning once it
// accepts connections.
func Start(ctx context.Context, opts Options) (*Server, error) {
	bin, err := findBinaries()
	if err != nil {
		return nil, err
	}
	acct, err := currentAccount()
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, acct: acct, port: opts.Port, log: opts.Log, settings: opts.Settings, tls: opts.TLS}
	if err := s.prepareDirs(opts.DataDir); err != nil {
		s.removeTemp()
		return nil, err
	}
	if err := s.initdb(ctx); err != nil {
		s.removeTemp()
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.startLocked(ctx, opts.Port == 0); err != nil {
		s.removeTemp()
		return nil, err
	}
	return s, nil
}

func (s *Server) prepareDirs(dataDir string) error {
	if dataDir == "" {
		parent, err := s.tempParent()
		if err != nil {
			return err
		}
		base, err := os.MkdirTemp(parent, "localpg-")
		if err != nil {
			return err
		}
		s.tempBase = base
		if err := markOwned(base); err != nil {
			return err
		}
		// MkdirTemp makes 0700 root-owned directories; postgres must pass
		// through this one to reach its data.
		if err := os.Chmod(base, 0o755); err != nil {
			return err
		}
		s.dataDir = filepath.Join(base, "data")
		s.sockDir = filepath.Join(base, "run")
	} else {
		abs, err := filepath.Abs(dataDir)
		if err != nil {
			return err
		}
		s.dataDir = abs
		if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
			return err
		}
		if err := s.acct.checkReachable(filepath.Dir(abs)); err != nil {
			return err
		}
		// The socket path must stay under the 107-byte sun_path limit, which
		// a data dir deep in a checkout can exceed, so it lives in /tmp.
		parent, err := s.tempParent()
		if err != nil {
			return err
		}
		sock, err := os.MkdirTemp(parent, "localpg-run-")
		if err != nil {
			return err
		}
		s.sockDir = sock
		if err := markOwned(sock); err != nil {
			return err
		}
	}
	s.workDir = filepath.Dir(s.dataDir)
	s.logPath = s.dataDir + ".log"
	return nil
}

// tempParent picks where temporary directories go: $TMPDIR unless the
// server's user cannot reach it, then /tmp.
func (s *Server) tempParent() (string, error) {
	var firstErr error
	for _, dir := range []string{os.TempDir(), "/tmp"} {
		err := s.acct.checkReachable(dir)
		if err == nil {
			sweepOrphans(dir)
			return dir, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return "", firstErr
}

func (s *Server) removeTemp() {
	if s.tempBase != "" {
		_ = os.RemoveAll(s.tempBase)
	} else if s.sockDir != "" {
		_ = os.RemoveAll(s.sockDir)
	}
}

// initdb creates the cluster unless the data directory already holds one.
func (s *Server) initdb(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(s.dataDir, "PG_VERSION")); err == nil {
		return nil
	}
	if entries, err := os.ReadDir(s.dataDir); err == nil && len(entries) > 0 {
		return fmt.Errorf("data directory %s is neither empty nor a PostgreSQL cluster", s.dataDir)
	}
	if err := s.acct.mkdirOwned(s.dataDir); err != nil {
		return err
	}
	logf, offset, err := s.openLog()
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.CommandContext(ctx, s.bin.initdb,
		"--pgdata="+s.dataDir, "--username=postgres", "--auth=trust",
		"--encoding=UTF8", "--locale=C", "--no-sync")
	s.prepareCmd(cmd, logf)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("initdb: %v; %s", err, s.logTail(offset))
	}
	// Settings live in an included file rewritten on every start, so a
	// persistent data dir follows the current options and still starts by
	// hand (pg_ctl) with the same configuration.
	f, err := os.OpenFile(filepath.Join(s.dataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString("\ninclude 'localpg.conf'\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeHBA writes pg_hba.conf on every start (initdb --auth=trust already
// trusts local connections; writing the file ourselves states the
// contract): trust everything local, except the TLS roles, which must
// come over TLS with their certificate and password.
func (s *Server) writeHBA() error {
	var b strings.Builder
	b.WriteString("# Written by localpg on every start; edits are overwritten.\n")
	b.WriteString("local all all trust\nlocal replication all trust\n")
	if s.tls != nil {
		for _, r := range s.tls.Roles {
			for _, db := range []string{"all", "replication"} {
				fmt.Fprintf(&b, "hostnossl %s %s 0.0.0.0/0 reject\nhostnossl %s %s ::/0 reject\n", db, r, db, r)
				fmt.Fprintf(&b, "hostssl %s %s 127.0.0.1/32 scram-sha-256 clientcert=verify-full\n", db, r)
			}
		}
	}
	for _, db := range []string{"all", "replication"} {
		fmt.Fprintf(&b, "host %s all 127.0.0.1/32 trust\nhost %s all ::1/128 trust\n", db, db)
	}
	return s.writeOwned(filepath.Join(s.dataDir, "pg_hba.conf"), b.String())
}

// writeTLS puts the certificates in the data directory (PostgreSQL wants
// its key readable by it alone) and returns the settings that use them.
func (s *Server) writeTLS() (map[string]string, error) {
	if s.tls == nil {
		return nil, nil
	}
	files := map[string][]byte{"server.crt": s.tls.CertPEM, "server.key": s.tls.KeyPEM, "clients-ca.crt": s.tls.CAPEM}
	for name, b := range files {
		if err := s.writeOwned(filepath.Join(s.dataDir, name), string(b)); err != nil {
			return nil, err
		}
	}
	return map[string]string{"ssl": "on", "ssl_cert_file": "server.crt", "ssl_key_file": "server.key", "ssl_ca_file": "clients-ca.crt"}, nil
}

func (s *Server) writeConf() error {
	if err := s.writeHBA(); err != nil {
		return err
	}
	tlsSet, err := s.writeTLS()
	if err != nil {
		return err
	}
	set := map[string]string{
		"listen_addresses":        "127.0.0.1",
		"port":                    strconv.Itoa(s.port),
		"unix_socket_directories": s.sockDir,
		"wal_level":               "logical",
		"max_replication_slots":   "32",
		"max_wal_senders":         "32",
		"max_connections":         "200",
		"fsync":                   "off",
		"full_page_writes":        "off",
		"logging_collector":       "off",
	}
	for k, v := range tlsSet {
		set[k] = v
	}
	for k, v := range s.settings {
		set[k] = v
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("# Written by localpg on every start; edits are overwritten.\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = '%s'\n", k, strings.ReplaceAll(set[k], "'", "''"))
	}
	return s.writeOwned(filepath.Join(s.dataDir, "localpg.conf"), b.String())
}

func (s *Server) writeOwned(path, content string) error {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return err
	}
	return s.acct.own(path)
}

// openLog opens the server log for appending and returns its current size,
// so error messages can quote only what this run wrote.
func (s *Server) openLog() (*os.File, int64, error) {
	f, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

// logTail returns the end of what the log gained since offset.
func (s *Server) logTail(offset int64) string {
	const max = 4 << 10
	f, err := os.Open(s.logPath)
	if err != nil {
		return "no server log: " + err.Error()
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err.Error()
	}
	if fi.Size()-offset > max {
		offset = fi.Size() - max
	}
	b := make([]byte, fi.Size()-offset)
	n, _ := f.ReadAt(b, offset)
	return fmt.Sprintf("server log %s ends:\n%s", s.logPath, strings.TrimSpace(string(b[:n])))
}

// LogTail returns the last few kilobytes of the server log, for test
// failure reports.
func (s *Server) LogTail() string { return s.logTail(0) }

// ErrStopped is returned by Restart after Stop removed a temporary data
// directory.
var ErrStopped = errors.New("localpg: server stopped and its temporary data directory removed")

// DSN returns the URL of database db, e.g.
// postgres://postgres@127.0.0.1:PORT/db?sslmode=disable.
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, url.PathEscape(db))
}

// TLSDSN is the URL of database db for role with password over verified
// TLS (sslmode=verify-full) with the client certificate certFile/keyFile,
// trusting the server's certificate as signed by caFile.
func (s *Server) TLSDSN(db, role, password, caFile, certFile, keyFile string) string {
	q := url.Values{"sslmode": {"verify-full"}, "sslrootcert": {caFile}, "sslcert": {certFile}, "sslkey": {keyFile}}
	u := url.URL{Scheme: "postgres", User: url.UserPassword(role, password), Host: fmt.Sprintf("127.0.0.1:%d", s.port), Path: "/" + db, RawQuery: q.Encode()}
	return u.String()
}

// Port returns the TCP port on 127.0.0.1.
func (s *Server) Port() int { return s.port }

// DataDir returns the data directory.
func (s *Server) DataDir() string { return s.dataDir }

// SocketDir returns the Unix socket directory (for psql -h, pg_recvlogical).
func (s *Server) SocketDir() string { return s.sockDir }

// LogPath returns the server log file.
func (s *Server) LogPath() string { return s.logPath }

// Running reports whether the server process is up.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return false
	}
	select {
	case <-s.proc.done:
		return false
	default:
		return true
	}
}

// Shutdown stops the server with a fast shutdown (SIGINT), SIGKILLing it
// after 10 s, and keeps the data directory for Restart.
func (s *Server) Shutdown() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shutdownLocked()
}

func (s *Server) shutdownLocked() error {
	p := s.proc
	if p == nil {
		return nil
	}
	s.proc = nil
	// SIGINT is postgres's "fast" shutdown: abort transactions, checkpoint,
	// exit. Only the postmaster gets it; it stops its children itself.
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		p.kill()
		return errors.New("localpg: postgres ignored fast shutdown for 10s; killed it")
	}
}

// Stop shuts the server down for good and removes the temporary data
// directory, if Start created one. It is safe to call more than once.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.shutdownLocked()
	if !s.stopped {
		s.stopped = true
		s.removeTemp()
	}
	return err
}

// Kill SIGKILLs the postmaster and all its children, like a crash; the data
// directory is kept, and Restart runs crash recovery.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		s.proc.kill()
		s.proc = nil
	}
}

// Restart starts the server again on the same port and data directory
// (after Shutdown, Kill, or Stop of a persistent server; a running server is
// shut down first) and waits until it accepts connections.
func (s *Server) Restart(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped && s.tempBase != "" {
		return ErrStopped
	}
	if err := s.shutdownLocked(); err != nil {
		return err
	}
	s.stopped = false
	return s.startLocked(ctx, false)
}

// Connect opens a connection to database db as superuser postgres.
func (s *Server) Connect(ctx context.Context, db string) (*pgx.Conn, error) {
	return pgx.Connect(ctx, s.DSN(db))
}

// CreateDatabase creates database name.
func (s *Server) CreateDatabase(ctx context.Context, name string) error {
	conn, err := s.Connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// DropDatabase drops database name after ending its sessions (replication
// connections included) and dropping its replication slots, which would
// otherwise block the drop.
func (s *Server) DropDatabase(ctx context.Context, name string) error {
	conn, err := s.Connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for {
		// A terminated walsender releases its slot asynchronously, so
		// dropping can fail once or twice; retry until ctx gives up.
		_, err = conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE datname = $1 AND pid <> pg_backend_pid()`, name)
		if err == nil {
			_, err = conn.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
				WHERE database = $1 AND NOT active`, name)
		}
		if err == nil {
			_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		}
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("drop database %s: %w", name, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
