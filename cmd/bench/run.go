package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cowjacket/formjira/internal/capture"
	"github.com/cowjacket/formjira/internal/localnats"
	"github.com/cowjacket/formjira/internal/localpg"
)

const usage = `usage: bench capture [flags]

Measures capture (issue 2 §6) on a private PostgreSQL and nats-server:
  throughput  a backlog of -rows single-row transactions (pgbench, -clients
              connections) in front of two slots created beforehand; then
              pg_recvlogical (pgoutput, to a file, --endpos) and capture (to
              acked JetStream messages) each drain it, alternating who goes
              first; rows/s and their ratio per run, medians over -runs
  rss         peak RSS (VmHWM) of a capture process draining -rss-rows
  latency     -rate rows/s for -latency, commit time (pgoutput) → JetStream
              stored time per message, p50/p99, -latency-runs times

flags:
`

type options struct {
	rows, runs, clients int
	rssRows             int
	rate                int
	latency             time.Duration
	latencyRuns         int
	captureBin          string
	inProcess           bool
	cpuProfile          string
	maxInFlight         string
	only                string
	keep                bool
	row                 string
	captureEnv          string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "capture" {
		fmt.Fprint(stderr, usage)
		return errors.New("want: bench capture [flags]")
	}
	var o options
	fs := flag.NewFlagSet("bench capture", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	fs.IntVar(&o.rows, "rows", 100_000, "backlog rows for the throughput runs")
	fs.StringVar(&o.row, "row", "sample", "row shape of the backlog: sample (a realistic row) or small (a few short columns, the rest NULL)")
	fs.IntVar(&o.runs, "runs", 3, "throughput runs (medians are reported)")
	fs.IntVar(&o.clients, "clients", 4, "pgbench clients writing the backlog")
	fs.IntVar(&o.rssRows, "rss-rows", 1_000_000, "backlog rows for the peak-RSS run")
	fs.IntVar(&o.rate, "rate", 100, "rows/s for the latency run")
	fs.DurationVar(&o.latency, "latency", 30*time.Second, "duration of each latency run")
	fs.IntVar(&o.latencyRuns, "latency-runs", 3, "latency runs")
	fs.StringVar(&o.captureBin, "capture-bin", "", "capture binary (default: go build ./cmd/capture into a temp dir)")
	fs.BoolVar(&o.inProcess, "in-process", false, "run capture inside this process (for -cpuprofile) instead of as its own process")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "with -in-process: write a CPU profile of the capture drains here")
	fs.StringVar(&o.maxInFlight, "max-in-flight", "", "MAX_IN_FLIGHT for capture (default: capture's)")
	fs.StringVar(&o.captureEnv, "capture-env", "", "extra variables for capture, comma-separated K=V (e.g. GOGC=200)")
	fs.StringVar(&o.only, "only", "throughput,rss,latency", "which measurements, comma-separated")
	fs.BoolVar(&o.keep, "keep", false, "keep the temp folder (pgbench script, pg_recvlogical output)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if o.cpuProfile != "" && !o.inProcess {
		return errors.New("-cpuprofile needs -in-process")
	}
	if o.row != "sample" && o.row != "small" {
		return fmt.Errorf("-row: want sample or small, got %q", o.row)
	}

	tmp, err := os.MkdirTemp("", "capture-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(stderr, "temp folder:", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	if !o.inProcess && o.captureBin == "" {
		o.captureBin = filepath.Join(tmp, "capture")
		fmt.Fprintln(stderr, "building ./cmd/capture …")
		b := exec.CommandContext(ctx, "go", "build", "-o", o.captureBin, "./cmd/capture")
		b.Stdout, b.Stderr = stderr, stderr
		if err := b.Run(); err != nil {
			return fmt.Errorf("build capture (run bench from the repository root): %w", err)
		}
	}

	fmt.Fprintln(stderr, "starting PostgreSQL …")
	pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	srv, err := localpg.Start(pctx, localpg.Options{})
	cancel()
	if err != nil {
		return err
	}
	defer srv.Stop()
	var pgVersion string
	if c, err := srv.Connect(ctx, "postgres"); err == nil {
		_ = c.QueryRow(ctx, "SHOW server_version").Scan(&pgVersion)
		c.Close(context.Background())
	}

	b := &bench{o: o, srv: srv, tmp: tmp, log: stderr}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		b.profile = f
	}
	fmt.Fprintf(stdout, "# bench capture %s\n", strings.Join(args[1:], " "))
	fmt.Fprintf(stdout, "# %s, %d CPUs (GOMAXPROCS %d), %s/%s, PostgreSQL %s, capture %s\n\n",
		time.Now().UTC().Format(time.RFC3339), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, pgVersion,
		map[bool]string{true: "in-process", false: "as its own process"}[o.inProcess])

	want := func(s string) bool { return slices.Contains(strings.Split(o.only, ","), s) }
	if want("throughput") {
		if err := b.throughput(ctx, stdout); err != nil {
			return fmt.Errorf("throughput: %w", err)
		}
	}
	if want("latency") {
		if err := b.latencyRuns(ctx, stdout); err != nil {
			return fmt.Errorf("latency: %w", err)
		}
	}
	if want("rss") {
		if err := b.rss(ctx, stdout); err != nil {
			return fmt.Errorf("rss: %w", err)
		}
	}
	return nil
}

type bench struct {
	o       options
	srv     *localpg.Server
	tmp     string
	log     io.Writer
	seq     int
	profile *os.File
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// world is one run's database (with publication and slots) and nats-server.
type world struct {
	db, dsn string
	nats    *localnats.Server
}

const (
	captureSlot = "bench_capture"
	readerSlot  = "bench_recvlogical"
	publication = "cowjacket"
)

func (b *bench) newWorld(ctx context.Context) (*world, error) {
	b.seq++
	w := &world{db: fmt.Sprintf("bench_%d_%d", os.Getpid(), b.seq)}
	if err := b.srv.CreateDatabase(ctx, w.db); err != nil {
		return nil, err
	}
	w.dsn = b.srv.DSN(w.db)
	if err := prepare(ctx, w.dsn); err != nil {
		return nil, err
	}
	ns, err := localnats.Start(localnats.Options{})
	if err != nil {
		return nil, err
	}
	w.nats = ns
	return w, nil
}

func (b *bench) dropWorld(w *world) {
	w.nats.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := b.srv.DropDatabase(ctx, w.db); err != nil {
		b.logf("drop %s: %v", w.db, err)
	}
}

// captureEnv is capture's configuration for a world.
func (b *bench) captureEnv(w *world) map[string]string {
	env := map[string]string{
		"DATABASE_URL":     w.dsn,
		"NATS_URL":         w.nats.URL(),
		"HTTP_ADDR":        "off",
		"SLOT_NAME":        captureSlot,
		"PUBLICATION_NAME": publication,
		"LOG_LEVEL":        "warn",
	}
	if b.o.maxInFlight != "" {
		env["MAX_IN_FLIGHT"] = b.o.maxInFlight
	}
	for _, kv := range strings.Split(b.o.captureEnv, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return env
}

// proc is a running capture, in its own process or in this one.
type proc struct {
	cmd     *exec.Cmd
	cancel  context.CancelFunc
	done    chan error
	once    sync.Once
	stopErr error
}

func (b *bench) startCapture(ctx context.Context, w *world) (*proc, error) {
	env := b.captureEnv(w)
	if b.o.inProcess {
		capture.TuneGC() // as cmd/capture does
		cctx, cancel := context.WithCancel(ctx)
		p := &proc{cancel: cancel, done: make(chan error, 1)}
		go func() { p.done <- capture.Run(cctx, func(k string) string { return env[k] }, io.Discard, b.log) }()
		return p, nil
	}
	cmd := exec.Command(b.o.captureBin)
	cmd.Dir = b.tmp // no stray .env
	cmd.Env = cleanEnv()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = b.log, b.log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	return p, nil
}

// stop is SIGTERM (or its in-process equivalent) and the wait for exit.
func (p *proc) stop() error {
	p.once.Do(func() { p.stopErr = p.stopOnce() })
	return p.stopErr
}

func (p *proc) stopOnce() error {
	if p.cancel != nil {
		p.cancel()
	} else {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case err := <-p.done:
		return err
	case <-time.After(15 * time.Second):
		if p.cmd != nil {
			_ = p.cmd.Process.Kill()
		}
		return errors.New("capture did not stop within 15 s")
	}
}

func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			out = append(out, kv)
		}
	}
	return out
}
