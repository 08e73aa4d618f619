// Package localnats runs in-process nats-server instances with JetStream, a
// single server or a cluster, for integration tests, benchmarks and the
// local demo. Servers listen on loopback only and have no authentication,
// unless they run from a configuration file (Options.ConfigFile).
package localnats

import (
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/cowjacket/formjira/internal/testsupport"
)

// Options configures Start.
type Options struct {
	// Host to listen on; default 127.0.0.1.
	Host string
	// Port for clients; 0 picks a free one, kept across Restart.
	Port int
	// StoreDir holds JetStream's data. Empty means a temporary directory
	// that Close removes; otherwise it persists across runs (the demo).
	StoreDir string
	// MaxPayload overrides the server's 1 MiB message size limit.
	MaxPayload int32
	// ServerName names the server (in a cluster: the prefix of n1, n2, …).
	ServerName string
	// Log, when set, receives the server's log (notices, warnings, errors).
	Log io.Writer
	// ConfigFile, when set, is a nats-server configuration file (as
	// `nats-server -c`) the server runs from: its users, permissions and
	// TLS apply. Host, Port and StoreDir above still override its listen
	// address and store, so a test can run a production file on loopback.
	ConfigFile string
}

// readyTimeout bounds how long a server may take to accept clients.
const readyTimeout = 10 * time.Second

// Server is an embedded nats-server that can be stopped and restarted on
// the same address and store, so clients reconnect to the URL they had.
// Its methods are safe for concurrent use.
type Server struct {
	host       string
	port       int
	storeDir   string
	tempStore  bool
	maxPayload int32
	name       string
	log        io.Writer
	configFile string
	cluster    *clusterConf // nil for a standalone server

	mu  sync.Mutex
	srv *server.Server // nil while shut down
	tls bool           // the configuration file requires TLS
}

// clusterConf is what a cluster node adds to a standalone server.
type clusterConf struct {
	name   string
	port   int
	routes []*url.URL
}

// Start starts a JetStream-enabled server and waits until it accepts
// clients.
func Start(opts Options) (*Server, error) {
	s, err := newServer(opts)
	if err != nil {
		return nil, err
	}
	if err := s.start(); err != nil {
		s.removeTemp()
		return nil, err
	}
	return s, nil
}

func newServer(opts Options) (*Server, error) {
	s := &Server{
		host:       opts.Host,
		port:       opts.Port,
		storeDir:   opts.StoreDir,
		maxPayload: opts.MaxPayload,
		name:       opts.ServerName,
		log:        opts.Log,
		configFile: opts.ConfigFile,
	}
	if s.host == "" {
		s.host = "127.0.0.1"
	}
	if s.port == 0 {
		s.port = server.RANDOM_PORT
	}
	if s.storeDir == "" {
		dir, err := os.MkdirTemp("", "localnats-")
		if err != nil {
			return nil, err
		}
		s.storeDir, s.tempStore = dir, true
	}
	return s, nil
}

// serverOptions builds fresh options on every start: NewServer mutates the
// struct it is given, so one must not be reused for a restart.
func (s *Server) serverOptions() (*server.Options, error) {
	o := &server.Options{}
	if s.configFile != "" {
		var err error
		if o, err = server.ProcessConfigFile(s.configFile); err != nil {
			return nil, fmt.Errorf("nats-server -c %s: %w", s.configFile, err)
		}
	}
	if s.name != "" {
		o.ServerName = s.name
	}
	o.Host, o.Port = s.host, s.port
	o.HTTPHost, o.HTTPPort, o.HTTPSPort = "", 0, 0 // no monitoring port to collide on
	o.JetStream, o.StoreDir = true, s.storeDir
	if s.maxPayload != 0 {
		o.MaxPayload = s.maxPayload
	}
	o.NoSigs = true // signals belong to the test process or the demo's main
	o.NoLog = s.log == nil
	if c := s.cluster; c != nil {
		o.Cluster = server.ClusterOpts{Name: c.name, Host: s.host, Port: c.port}
		o.Routes = c.routes
	}
	return o, nil
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return nil
	}
	o, err := s.serverOptions()
	if err != nil {
		return err
	}
	srv, err := server.NewServer(o)
	if err != nil {
		return fmt.Errorf("nats-server: %w", err)
	}
	if s.log != nil {
		srv.SetLogger(&logger{w: s.log, prefix: srv.Name()}, false, false)
	}
	srv.Start()
	if !srv.ReadyForConnections(readyTimeout) {
		srv.Shutdown()
		return fmt.Errorf("nats-server on %s:%d not ready within %v (port taken?)", s.host, s.port, readyTimeout)
	}
	// Pin the port a random pick chose, so Restart comes back where the
	// clients will look for it.
	s.port = srv.Addr().(*net.TCPAddr).Port
	s.srv, s.tls = srv, o.TLSConfig != nil
	return nil
}

// URL returns the client URL, e.g. nats://127.0.0.1:PORT (tls://… when
// the configuration file requires TLS).
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	scheme := "nats"
	if s.tls {
		scheme = "tls"
	}
	return scheme + "://" + net.JoinHostPort(s.host, strconv.Itoa(s.port))
}

// Port returns the client port.
func (s *Server) Port() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.port
}

// StoreDir returns the JetStream store directory.
func (s *Server) StoreDir() string { return s.storeDir }

// Server returns the embedded server for inspection (Jsz, Varz, …), or
// nil while shut down.
func (s *Server) Server() *server.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv
}

// Running reports whether the server is up.
func (s *Server) Running() bool { return s.Server() != nil }

// Shutdown stops the server, disconnecting clients, and keeps the store for
// Restart. Shutting down a stopped server does nothing.
func (s *Server) Shutdown() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// Restart starts the server again on the same address with the same store
// (shutting it down first if it is running), so JetStream data survives and
// clients with reconnects enabled come back by themselves.
func (s *Server) Restart() error {
	s.Shutdown()
	return s.start()
}

// Close shuts the server down and removes its store if it was temporary.
func (s *Server) Close() {
	s.Shutdown()
	s.removeTemp()
}

func (s *Server) removeTemp() {
	if s.tempStore {
		_ = os.RemoveAll(s.storeDir)
	}
}

// StartTB starts a throwaway server for one test or benchmark, failing it
// if that is impossible, and closes the server in tb.Cleanup. A server
// starts in milliseconds, so one per test is fine.
func StartTB(tb testing.TB) *Server {
	tb.Helper()
	s, err := Start(Options{})
	if err != nil {
		tb.Fatalf("localnats: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// ConnectTB connects to s for one test, failing it if that is impossible;
// the connection closes in tb.Cleanup.
func (s *Server) ConnectTB(tb testing.TB, opts ...nats.Option) *nats.Conn {
	tb.Helper()
	nc, err := nats.Connect(s.URL(), opts...)
	if err != nil {
		tb.Fatalf("localnats: connect: %v", err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// logger adapts an io.Writer to nats-server's Logger. Unlike the server's
// own logger, Fatalf does not exit the process: a bind failure must fail
// the start, not kill the test binary.
type logger struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
}

func (l *logger) logf(level, format string, v []any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%s [%s] %s %s\n", time.Now().Format("15:04:05.000"), l.prefix, level, fmt.Sprintf(format, v...))
}

func (l *logger) Noticef(format string, v ...any) { l.logf("INF", format, v) }
func (l *logger) Warnf(format string, v ...any)   { l.logf("WRN", format, v) }
func (l *logger) Fatalf(format string, v ...any)  { l.logf("FTL", format, v) }
func (l *logger) Errorf(format string, v ...any)  { l.logf("ERR", format, v) }
func (l *logger) Debugf(format string, v ...any)  { l.logf("DBG", format, v) }
func (l *logger) Tracef(format string, v ...any)  { l.logf("TRC", format, v) }

// StartAuthTB is a throwaway server that requires TLS (a certificate of
// ca for 127.0.0.1; clients need certificates of ca) and one of the
// users (name → password), for tests of what clients do with credentials.
func StartAuthTB(tb testing.TB, ca *testsupport.CA, users map[string]string) *Server {
	tb.Helper()
	srv := ca.Server(tb, "127.0.0.1")
	var b strings.Builder
	fmt.Fprintf(&b, "tls { cert_file: %q, key_file: %q, ca_file: %q, verify: true, timeout: 2 }\nauthorization { users: [\n", srv.CertFile, srv.KeyFile, ca.File)
	for u, pw := range users {
		fmt.Fprintf(&b, "  {user: %q, password: %q}\n", u, pw)
	}
	b.WriteString("] }\n")
	conf := filepath.Join(tb.TempDir(), "nats-server.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o600); err != nil {
		tb.Fatal(err)
	}
	s, err := Start(Options{ConfigFile: conf})
	if err != nil {
		tb.Fatalf("localnats: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}
