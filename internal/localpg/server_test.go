package localpg

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cowjacket/formjira/internal/testsupport"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

var pg *Server

func TestMain(m *testing.M) { os.Exit(Main(m, &pg)) }

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func queryString(t *testing.T, conn *pgx.Conn, sql string, args ...any) string {
	t.Helper()
	var s string
	if err := conn.QueryRow(context.Background(), sql, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func TestServerSettings(t *testing.T) {
	t.Parallel()
	conn := connect(t, pg.NewDatabase(t))
	for setting, want := range map[string]string{
		"wal_level":               "logical",
		"max_replication_slots":   "32",
		"max_wal_senders":         "32",
		"max_connections":         "200",
		"fsync":                   "off",
		"listen_addresses":        "127.0.0.1",
		"server_encoding":         "UTF8",
		"unix_socket_directories": pg.SocketDir(),
	} {
		if got := queryString(t, conn, "SELECT current_setting($1)", setting); got != want {
			t.Errorf("%s = %q, want %q", setting, got, want)
		}
	}
	if got := queryString(t, conn, "SELECT current_user"); got != "postgres" {
		t.Errorf("current_user = %q, want postgres", got)
	}
	// Only wal_level=logical allows this.
	if _, err := conn.Exec(context.Background(), "SELECT pg_create_logical_replication_slot('t', 'pgoutput')"); err != nil {
		t.Fatalf("create logical slot: %v", err)
	}
}

func TestNewDatabaseIsolation(t *testing.T) {
	t.Parallel()
	a := connect(t, pg.NewDatabase(t))
	b := connect(t, pg.NewDatabase(t))
	if _, err := a.Exec(context.Background(), "CREATE TABLE only_in_a (id int)"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := b.QueryRow(context.Background(),
		"SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatal("table created in one database is visible in another")
	}
}

// A test that ends while a walsender is streaming from its slot must still
// leave no database and no slot behind on the shared server.
func TestNewDatabaseCleanupWithActiveSlot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var db string
	t.Run("inner", func(t *testing.T) {
		dsn := pg.NewDatabase(t)
		conn := connect(t, dsn)
		db = queryString(t, conn, "SELECT current_database()")
		if _, err := conn.Exec(ctx, "CREATE PUBLICATION p FOR ALL TABLES"); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, "SELECT pg_create_logical_replication_slot('idle', 'pgoutput')"); err != nil {
			t.Fatal(err)
		}
		repl, err := pgconn.Connect(ctx, dsn+"&replication=database")
		if err != nil {
			t.Fatalf("replication connection: %v", err)
		}
		// Deliberately never closed: the cleanup has to cope with it.
		if _, err := pglogrepl.CreateReplicationSlot(ctx, repl, "busy", "pgoutput", pglogrepl.CreateReplicationSlotOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := pglogrepl.StartReplication(ctx, repl, "busy", 0, pglogrepl.StartReplicationOptions{
			PluginArgs: []string{"proto_version '1'", "publication_names 'p'"},
		}); err != nil {
			t.Fatal(err)
		}
		if got := queryString(t, conn, "SELECT string_agg(slot_name || ':' || active, ',' ORDER BY slot_name) FROM pg_replication_slots WHERE database = $1", db); got != "busy:true,idle:false" {
			t.Fatalf("slots = %q", got)
		}
	})
	conn := connect(t, pg.DSN("postgres"))
	var dbs, slots int
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_database WHERE datname = $1),
		(SELECT count(*) FROM pg_replication_slots WHERE database = $1)`, db).Scan(&dbs, &slots); err != nil {
		t.Fatal(err)
	}
	if dbs != 0 || slots != 0 {
		t.Fatalf("after cleanup: %d databases and %d slots named for %s remain", dbs, slots, db)
	}
}

func TestKillRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := StartTB(t)
	port := srv.Port()
	if err := srv.CreateDatabase(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	conn, err := srv.Connect(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE t (v text); INSERT INTO t VALUES ('committed')"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	srv.Kill()
	if srv.Running() {
		t.Fatal("Running after Kill")
	}
	if _, err := srv.Connect(ctx, "app"); err == nil {
		t.Fatal("connected to a killed server")
	}
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if srv.Port() != port {
		t.Fatalf("port changed from %d to %d", port, srv.Port())
	}
	c := connect(t, srv.DSN("app"))
	if got := queryString(t, c, "SELECT v FROM t"); got != "committed" {
		t.Fatalf("after crash recovery v = %q", got)
	}
	c.Close(ctx)

	// A graceful Shutdown is restartable too.
	if err := srv.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	c = connect(t, srv.DSN("app"))
	if got := queryString(t, c, "SELECT v FROM t"); got != "committed" {
		t.Fatalf("after shutdown v = %q", got)
	}
}

func TestPersistentDataDir(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// Not t.TempDir(): as root its 0700 parent would keep postgres out.
	parent, err := os.MkdirTemp("", "localpg-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := Options{
		DataDir:  filepath.Join(parent, "pgdata"),
		Settings: map[string]string{"work_mem": "7MB", "application_name": "it's quoted"},
	}

	srv, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := srv.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	if got := queryString(t, conn, "SELECT current_setting('work_mem') || '|' || current_setting('application_name')"); got != "7MB|it's quoted" {
		t.Errorf("settings = %q", got)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(opts.DataDir, "PG_VERSION")); err != nil {
		t.Fatalf("persistent data dir gone after Stop: %v", err)
	}

	srv, err = Start(ctx, opts) // must reuse, not initdb again
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	c := connect(t, srv.DSN("postgres"))
	if got := queryString(t, c, "SELECT v::text FROM kept"); got != "42" {
		t.Fatalf("v = %q", got)
	}
	log, err := os.ReadFile(opts.DataDir + ".log")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(log), "Success. You can now start the database server"); n != 1 {
		t.Errorf("initdb ran %d times, want 1", n)
	}
}

func TestStopRemovesTempDir(t *testing.T) {
	t.Parallel()
	var log testsupport.Buffer
	srv, err := Start(context.Background(), Options{Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "ready to accept connections") {
		t.Errorf("Options.Log got no server output:\n%s", log.String())
	}
	dir := srv.DataDir()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("data dir %s still exists after Stop (%v)", dir, err)
	}
	if err := srv.Restart(context.Background()); !errors.Is(err, ErrStopped) {
		t.Fatalf("Restart after Stop = %v, want ErrStopped", err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

func TestBinariesNotFound(t *testing.T) {
	t.Setenv("PG_BIN", t.TempDir())
	_, err := Start(context.Background(), Options{})
	if !errors.Is(err, ErrBinariesNotFound) {
		t.Fatalf("err = %v, want ErrBinariesNotFound", err)
	}
	if !strings.Contains(err.Error(), "apt-get install postgresql") {
		t.Fatalf("error does not say what to install: %v", err)
	}
}

func TestCheckReachable(t *testing.T) {
	dir := t.TempDir()
	closed := filepath.Join(dir, "closed")
	if err := os.Mkdir(closed, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Parents of t.TempDir() are 0700; open them for this check.
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	// Any cred makes the check apply, whoever runs the test.
	stranger := account{uid: 1 << 20, gid: 1 << 20, cred: &syscall.Credential{}}
	if err := stranger.checkReachable(dir); err != nil {
		t.Errorf("0755 path: %v", err)
	}
	err := stranger.checkReachable(closed)
	if err == nil || !strings.Contains(err.Error(), closed+" (mode 0700) is not traversable") {
		t.Errorf("0700 parent: err = %v", err)
	}
}

func TestVersionLess(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"9.6", "15", true},
		{"15", "9.6", false},
		{"14", "15", true},
		{"15", "15", false},
		{"16", "100", true},
	} {
		if got := versionLess(tc.a, tc.b); got != tc.want {
			t.Errorf("versionLess(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}

func TestDatabaseName(t *testing.T) {
	a := databaseName("TestVeryLong/Sub-Test Name with spaces and ünïcode and more and more")
	b := databaseName("TestVeryLong/Sub-Test Name with spaces and ünïcode and more and more")
	if a == b {
		t.Fatalf("names not unique: %q", a)
	}
	if len(a) > 63 {
		t.Fatalf("%q exceeds the 63-byte identifier limit", a)
	}
	for _, r := range a {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			t.Fatalf("%q has %q", a, r)
		}
	}
}

func TestSweepOrphans(t *testing.T) {
	parent := t.TempDir()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	dirs := map[string]string{ // name → owner file content ("" = none)
		"localpg-dead":  strconv.Itoa(dead.Process.Pid),
		"localpg-alive": strconv.Itoa(os.Getpid()),
		"localpg-other": "",
	}
	for name, owner := range dirs {
		dir := filepath.Join(parent, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if owner != "" {
			if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(owner), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	sweepOrphans(parent)
	for name := range dirs {
		_, err := os.Stat(filepath.Join(parent, name))
		if gone := errors.Is(err, os.ErrNotExist); gone != (name == "localpg-dead") {
			t.Errorf("%s: removed = %v", name, gone)
		}
	}
}

// TestPortTakenByAnotherServer: a second server asked for the port of a
// running one fails to start, naming the port, instead of taking the
// other for itself (a second demo once ran against the first's database).
func TestPortTakenByAnotherServer(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	second, err := Start(ctx, Options{Port: pg.Port()})
	if err == nil {
		second.Stop()
		t.Fatalf("a second server started on port %d, which another one holds", pg.Port())
	}
	if !strings.Contains(err.Error(), strconv.Itoa(pg.Port())) {
		t.Errorf("error %v does not name the port", err)
	}
}
