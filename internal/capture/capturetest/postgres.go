package capturetest

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/cowjacket/formjira/internal/localpg"
	"github.com/cowjacket/formjira/internal/testsupport"
)

// Role is the role of deploy/postgres/02-capture-role.sql, which every
// capture test runs capture as; RolePassword is its password on the test
// servers.
const (
	Role         = "cowjacket_capture"
	RolePassword = "capture-db-test-passw0rd"
)

// serverTLS is the client side of a test server's TLS: the CA that
// signed its certificate and the role's client certificate.
type serverTLS struct {
	ca     *testsupport.CA
	client testsupport.KeyPair
}

var tlsOf sync.Map // port → *serverTLS

// tlsOptions makes a CA in dir, the server's certificate for 127.0.0.1 and
// the role's client certificate.
func tlsOptions(dir string) (*serverTLS, *localpg.TLS, error) {
	ca, err := testsupport.MakeCA(dir, "postgres")
	if err != nil {
		return nil, nil, err
	}
	srv, err := ca.MakeServer("127.0.0.1")
	if err != nil {
		return nil, nil, err
	}
	client, err := ca.MakeClient(Role)
	if err != nil {
		return nil, nil, err
	}
	return &serverTLS{ca: ca, client: client},
		&localpg.TLS{CertPEM: srv.CertPEM, KeyPEM: srv.KeyPEM, CAPEM: ca.PEM, Roles: []string{Role}}, nil
}

// Main is localpg.Main for capture's tests: one server for the package,
// with TLS, requiring it (and a client certificate) of Role.
func Main(m *testing.M, srv **localpg.Server) int {
	dir, err := os.MkdirTemp("", "capturetest-pki-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	st, opts, err := tlsOptions(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return localpg.MainWith(m, srv, localpg.Options{TLS: opts}, func(s *localpg.Server) { tlsOf.Store(s.Port(), st) })
}

// StartPG is a server of its own for one test (one it may kill), set up
// as Main's.
func StartPG(tb testing.TB) *localpg.Server {
	tb.Helper()
	st, opts, err := tlsOptions(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	s := localpg.StartTBWith(tb, localpg.Options{TLS: opts})
	tlsOf.Store(s.Port(), st)
	return s
}

// roleDSN is capture's DATABASE_URL for the database of ownerDSN: Role,
// its password and client certificate, sslmode=verify-full.
func roleDSN(t *testing.T, ownerDSN string) string {
	t.Helper()
	u, err := url.Parse(ownerDSN)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(u.Port())
	v, ok := tlsOf.Load(port)
	if !ok {
		t.Fatalf("PostgreSQL on port %d was not started by capturetest.Main or capturetest.StartPG: capture's tests need its TLS and role", port)
	}
	st := v.(*serverTLS)
	q := url.Values{"sslmode": {"verify-full"}, "sslrootcert": {st.ca.File}, "sslcert": {st.client.CertFile}, "sslkey": {st.client.KeyFile}}
	u.User, u.RawQuery = url.UserPassword(Role, RolePassword), q.Encode()
	return u.String()
}

// RoleTLS is the files of the role's TLS: the servers' CA and its client
// certificate and key, for a test that builds its own DATABASE_URL.
func RoleTLS(t *testing.T, srv *localpg.Server) (caFile, certFile, keyFile string) {
	t.Helper()
	v, ok := tlsOf.Load(srv.Port())
	if !ok {
		t.Fatal("not a capturetest server")
	}
	st := v.(*serverTLS)
	return st.ca.File, st.client.CertFile, st.client.KeyFile
}

// captureRoleSQL is deploy/postgres/02-capture-role.sql, as production
// runs it (as the table's owner), then the password production sets out
// of band.
func captureRoleSQL(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "..", "deploy", "postgres", "02-capture-role.sql"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\nALTER ROLE " + Role + " PASSWORD '" + strings.ReplaceAll(RolePassword, "'", "''") + "';\n"
}
