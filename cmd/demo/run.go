package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/cowjacket/formjira/internal/capture"
	"github.com/cowjacket/formjira/internal/console"
	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/jirasandbox"
	"github.com/cowjacket/formjira/internal/localnats"
	"github.com/cowjacket/formjira/internal/localpg"
	"github.com/cowjacket/formjira/internal/ticketer"
	"github.com/cowjacket/formjira/internal/webauth"
)

// Demo credentials for the sandbox: not secrets, it only listens on loopback.
const (
	demoEmail = "demo@cowjacket.example"
	demoToken = "demo-token"
)

type options struct {
	dir         string
	fresh       bool
	noSamples   bool
	pgPort      int
	natsPort    int
	jiraAddr    string
	captureHTTP string
	ticketHTTP  string
	consoleAddr string
	mapping     string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o options
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.dir, "dir", ".demo", "folder holding all the demo's data (Postgres, JetStream, tickets, logs)")
	fs.BoolVar(&o.fresh, "fresh", false, "delete the demo folder first and start over")
	fs.BoolVar(&o.noSamples, "no-samples", false, "do not load the 200 sample submissions")
	fs.IntVar(&o.pgPort, "pg-port", 54329, "Postgres port on 127.0.0.1")
	fs.IntVar(&o.natsPort, "nats-port", 4222, "NATS port on 127.0.0.1")
	fs.StringVar(&o.jiraAddr, "jira-addr", "127.0.0.1:8089", "Jira sandbox address")
	fs.StringVar(&o.captureHTTP, "capture-http", "127.0.0.1:9101", "capture's /metrics address")
	fs.StringVar(&o.ticketHTTP, "ticketer-http", "127.0.0.1:9102", "ticketer's /metrics address")
	fs.StringVar(&o.consoleAddr, "console-addr", "127.0.0.1:9103", "the operator console's address")
	fs.StringVar(&o.mapping, "mapping", "deploy/mapping.yaml", "field mapping file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (flags start with --, e.g. --fresh; see --help)", fs.Args())
	}
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return err
	}
	if o.fresh {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("--fresh: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// As root Postgres runs as user postgres, which must reach its folder.
	_ = os.Chmod(dir, 0o755)
	say := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }

	say("starting Postgres (wal_level=logical) on 127.0.0.1:%d …", o.pgPort)
	pg, err := localpg.Start(ctx, localpg.Options{DataDir: filepath.Join(dir, "pg"), Port: o.pgPort})
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer pg.Shutdown()
	firstRun, err := prepareDatabase(ctx, pg)
	if err != nil {
		return err
	}
	dsn := pg.DSN("forms")

	say("starting JetStream on 127.0.0.1:%d …", o.natsPort)
	ns, err := localnats.Start(localnats.Options{Port: o.natsPort, StoreDir: filepath.Join(dir, "nats"), ServerName: "demo"})
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	defer ns.Shutdown()

	// As Jira Cloud behaves: search lags behind creates, bulk answers come
	// in any order, raiseOnBehalfOf must be a customer's accountId.
	sandbox := jirasandbox.New(jirasandbox.Options{Email: demoEmail, APIToken: demoToken, StateFile: filepath.Join(dir, "jira-sandbox.json"),
		SearchDelay: 150 * time.Millisecond, ShuffleBulk: true, StrictCustomers: true})
	jiraURL, stopJira, err := serve(o.jiraAddr, sandbox)
	if err != nil {
		return fmt.Errorf("jira sandbox: %w", err)
	}
	defer stopJira()

	captureLog, err := os.OpenFile(filepath.Join(dir, "capture.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer captureLog.Close()
	ticketerLog, err := os.OpenFile(filepath.Join(dir, "ticketer.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer ticketerLog.Close()

	captureEnv := env(map[string]string{
		"DATABASE_URL": dsn,
		"NATS_URL":     ns.URL(),
		"HTTP_ADDR":    o.captureHTTP,
	})
	ticketerEnv := env(map[string]string{
		"NATS_URL":       ns.URL(),
		"JIRA_URL":       jiraURL,
		"JIRA_EMAIL":     demoEmail,
		"JIRA_API_TOKEN": demoToken,
		"MAPPING_FILE":   o.mapping,
		"HTTP_ADDR":      o.ticketHTTP,
	})

	// The console: an operator login made for this run (printed below).
	consolePassword := rand.Text()
	usersFile := filepath.Join(dir, "console-users")
	line, err := webauth.HashPassword("operator", consolePassword)
	if err != nil {
		return err
	}
	if err := os.WriteFile(usersFile, []byte(line+"\n"), 0o600); err != nil {
		return err
	}
	consoleLog, err := os.OpenFile(filepath.Join(dir, "console.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer consoleLog.Close()
	consoleEnv := env(map[string]string{
		"NATS_URL":           ns.URL(),
		"JIRA_URL":           jiraURL,
		"JIRA_EMAIL":         demoEmail,
		"JIRA_API_TOKEN":     demoToken,
		"MAPPING_FILE":       o.mapping,
		"CONSOLE_ADDR":       o.consoleAddr,
		"CONSOLE_USERS_FILE": usersFile,
		"CONSOLE_OPERATORS":  "operator",
	})

	// Tickets already in the sandbox come from earlier runs; count them
	// before this run's rows can add any.
	earlier := len(sandbox.Issues())

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return service("capture", capture.Run(gctx, captureEnv, captureLog, captureLog)) })
	g.Go(func() error {
		return service("ticketer", ticketer.Run(gctx, ticketerEnv, ticketerLog, ticketerLog))
	})
	g.Go(func() error {
		if err := waitReady(gctx, "http://"+o.ticketHTTP+"/readyz"); err != nil {
			return err
		}
		return service("console", console.Run(gctx, consoleEnv, consoleLog, nil))
	})
	g.Go(func() error {
		if err := waitReady(gctx, "http://"+o.captureHTTP+"/readyz"); err != nil {
			return err
		}
		if firstRun && !o.noSamples {
			n, err := loadSamples(gctx, dsn)
			if err != nil {
				return fmt.Errorf("load samples: %w", err)
			}
			say("inserted %d sample submissions (one transaction each)", n)
		}
		say("")
		say("the pipeline is up (data in %s, logs: capture.log, ticketer.log):", dir)
		say("  tickets (Jira sandbox page):  %s/", jiraURL)
		say("  capture metrics:              http://%s/metrics", o.captureHTTP)
		say("  ticketer metrics:             http://%s/metrics", o.ticketHTTP)
		if err := waitReady(gctx, "http://"+o.consoleAddr+"/healthz"); err != nil {
			return err
		}
		say("  operator console:             http://%s/  (user operator, password %s; made for this run)", o.consoleAddr, consolePassword)
		say("  insert a row yourself:        psql %q -c \"INSERT INTO form_submissions (newusername, departmentname, emailaddress, costcenter, timeframe, dateneededby) VALUES ('Ada Lovelace', 'IT', 'ada@example.com', '1234567890', 'Permanent', current_date + 7)\"", dsn)
		say("  the stream:                   %s --server %s stream view FORMS", natsCLI(), ns.URL())
		say("  dead letters, replay, trace:  NATS_URL=%s JIRA_URL=%s JIRA_EMAIL=%s JIRA_API_TOKEN=%s go run ./cmd/ticketer dlq list",
			ns.URL(), jiraURL, demoEmail, demoToken)
		say("                                (the same variables for dlq replay, trace, stats)")
		say("Ctrl-C stops everything; run again to resume, --fresh to start over.")
		return watchTickets(gctx, sandbox, earlier, stdout)
	})
	err = g.Wait()
	say("stopping …")
	if errors.Is(err, context.Canceled) || ctx.Err() != nil {
		return nil
	}
	return err
}

// service turns a service's clean exit on shutdown into nil.
func service(name string, err error) error {
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", name, err)
	}
	return err
}

// env gives the in-process services their settings and nothing else from
// the caller's environment, so a stray JIRA_URL cannot point the demo at a
// real Jira.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// prepareDatabase creates database forms and the form table; firstRun says
// whether the table was new (so the samples are loaded once, not on resume).
func prepareDatabase(ctx context.Context, pg *localpg.Server) (firstRun bool, err error) {
	admin, err := pg.Connect(ctx, "postgres")
	if err != nil {
		return false, err
	}
	defer admin.Close(context.Background())
	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = 'forms')").Scan(&exists); err != nil {
		return false, err
	}
	if !exists {
		if err := pg.CreateDatabase(ctx, "forms"); err != nil {
			return false, err
		}
	}
	conn, err := pg.Connect(ctx, "forms")
	if err != nil {
		return false, err
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(ctx, "SELECT to_regclass('public.form_submissions') IS NOT NULL").Scan(&exists); err != nil {
		return false, err
	}
	if exists {
		return false, nil
	}
	if _, err := conn.Exec(ctx, form.SchemaSQL); err != nil {
		return false, fmt.Errorf("create form table: %w", err)
	}
	return true, nil
}

func loadSamples(ctx context.Context, dsn string) (int, error) {
	samples, err := form.Samples()
	if err != nil {
		return 0, err
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	insert := form.InsertSQL("public.form_submissions")
	for _, s := range samples {
		if _, err := conn.Exec(ctx, insert, s.Args()...); err != nil {
			return 0, err
		}
	}
	return len(samples), nil
}

// serve runs h on addr and returns its base URL.
func serve(addr string, h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

// natsCLI is how to call the nats CLI here: scripts/ensure-deps.sh puts it
// in GOPATH/bin, which may not be on the PATH.
func natsCLI() string {
	if p, err := exec.LookPath("nats"); err == nil {
		return filepath.Base(p)
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if p := filepath.Join(strings.TrimSpace(string(out)), "bin", "nats"); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "nats"
}

func waitReady(ctx context.Context, url string) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after 60s (see the logs in the demo folder)", url)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// watchTickets prints each ticket as the sandbox receives it.
func watchTickets(ctx context.Context, sb *jirasandbox.Server, seen int, w io.Writer) error {
	if seen > 0 {
		fmt.Fprintf(w, "(%d tickets from earlier runs)\n", seen)
	}
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		issues := sb.Issues()
		for _, is := range issues[min(seen, len(issues)):] {
			fmt.Fprintf(w, "ticket %s  %s\n", is.Key, summary(is.Fields))
		}
		seen = len(issues)
	}
}

func summary(fields map[string]any) string {
	if s, ok := fields["summary"].(string); ok {
		return s
	}
	return strconv.Itoa(len(fields)) + " fields"
}
