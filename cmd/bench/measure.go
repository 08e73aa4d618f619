package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/stream"
)

// drained is one capture drain of a backlog.
type drained struct {
	took, confirmTook time.Duration
	first             time.Duration // until the first message was stored
	cpu               time.Duration // user+sys of the capture process
	walsender, self   time.Duration // the walsender's CPU, this process's (nats-server)
	hwmKB, rssKB      int64         // VmHWM, VmRSS of the capture process (0 in-process)
}

// drain starts capture on a world whose slot holds n rows and times it until
// FORMS holds n messages (each one acked by JetStream), then until the slot
// is confirmed to end, and stops it.
func (b *bench) drain(ctx context.Context, w *world, n int, end pglogrepl.LSN) (drained, error) {
	var d drained
	nc, err := nats.Connect(w.nats.URL())
	if err != nil {
		return d, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return d, err
	}
	c, err := pgx.Connect(ctx, w.dsn)
	if err != nil {
		return d, err
	}
	defer c.Close(context.Background())

	if b.profile != nil {
		if err := pprof.StartCPUProfile(b.profile); err != nil {
			return d, err
		}
		defer pprof.StopCPUProfile()
	}
	cw, err := b.watchCPU(ctx, w.dsn, captureSlot)
	if err != nil {
		return d, err
	}
	begin := time.Now()
	p, err := b.startCapture(ctx, w)
	if err != nil {
		return d, err
	}
	defer p.stop()
	deadline := begin.Add(30 * time.Minute)
	lastLog := begin
	for {
		got := streamMsgs(ctx, js)
		if got > 0 && d.first == 0 {
			d.first = time.Since(begin)
		}
		if got >= uint64(n) {
			break
		}
		select {
		case err := <-p.done:
			return d, fmt.Errorf("capture exited: %v", err)
		case <-ctx.Done():
			return d, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return d, fmt.Errorf("FORMS holds %d of %d messages after 30 min", got, n)
		}
		if time.Since(lastLog) > 10*time.Second {
			b.logf("  capture: %d/%d messages", got, n)
			lastLog = time.Now()
		}
	}
	d.took = time.Since(begin)
	for {
		l, err := slotConfirmed(ctx, c, captureSlot)
		if err != nil {
			return d, err
		}
		if l >= end {
			break
		}
		if time.Since(begin) > d.took+time.Minute {
			return d, fmt.Errorf("slot confirmed to %s, not the backlog end %s, a minute after the last message", l, end)
		}
		time.Sleep(10 * time.Millisecond)
	}
	d.confirmTook = time.Since(begin)
	d.walsender, d.self = cw.stop()
	if p.cmd != nil {
		d.hwmKB, d.rssKB = procMem(p.cmd.Process.Pid)
	}
	if got := streamMsgs(ctx, js); got != uint64(n) {
		return d, fmt.Errorf("FORMS holds %d messages, want %d", got, n)
	}
	err = p.stop()
	if p.cmd != nil && p.cmd.ProcessState != nil {
		d.cpu = p.cmd.ProcessState.UserTime() + p.cmd.ProcessState.SystemTime()
		b.logf("  capture process: %v CPU (user %v, sys %v) over %v", d.cpu.Round(time.Millisecond),
			p.cmd.ProcessState.UserTime().Round(time.Millisecond), p.cmd.ProcessState.SystemTime().Round(time.Millisecond), d.confirmTook.Round(time.Millisecond))
	}
	return d, err
}

func streamMsgs(ctx context.Context, js jetstream.JetStream) uint64 {
	s, err := js.Stream(ctx, stream.Forms)
	if err != nil {
		return 0
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0
	}
	return info.State.Msgs
}

// procMem reads VmHWM and VmRSS (kB) from /proc/PID/status.
func procMem(pid int) (hwm, rss int64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmHWM":
			hwm = n
		case "VmRSS":
			rss = n
		}
	}
	return hwm, rss
}

func (b *bench) throughput(ctx context.Context, out io.Writer) error {
	fmt.Fprintf(out, "## Throughput: %d-row backlog, %s rows (pgbench, %d clients, one row per transaction)\n\n", b.o.rows, b.o.row, b.o.clients)
	var cpuRows []string
	fmt.Fprintln(out, "| run | backlog written | first | pg_recvlogical | rows/s | capture → acked | rows/s | capture/pg_recvlogical | slot confirmed to end | capture VmHWM |")
	fmt.Fprintln(out, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	var refRates, capRates, ratios []float64
	for i := range b.o.runs {
		w, err := b.newWorld(ctx)
		if err != nil {
			return err
		}
		b.logf("run %d: writing %d rows with pgbench …", i+1, b.o.rows)
		end, took, err := b.backlog(ctx, w, b.o.rows)
		if err != nil {
			b.dropWorld(w)
			return err
		}
		n := b.o.rows / min(b.o.clients, b.o.rows) * min(b.o.clients, b.o.rows)
		b.logf("run %d: %d rows in %v (end %s)", i+1, n, took.Round(time.Millisecond), end)

		var ref, refWalsender time.Duration
		var refBytes int64
		var d drained
		doRef := func() error {
			b.logf("run %d: pg_recvlogical …", i+1)
			ref, refBytes, refWalsender, err = b.recvlogical(ctx, w, end)
			return err
		}
		doCap := func() error {
			b.logf("run %d: capture …", i+1)
			d, err = b.drain(ctx, w, n, end)
			return err
		}
		first := "pg_recvlogical"
		steps := []func() error{doRef, doCap}
		if i%2 == 1 {
			first = "capture"
			steps = []func() error{doCap, doRef}
		}
		for _, step := range steps {
			if err := step(); err != nil {
				b.dropWorld(w)
				return err
			}
		}
		b.dropWorld(w)
		refRate := float64(n) / ref.Seconds()
		capRate := float64(n) / d.took.Seconds()
		refRates, capRates, ratios = append(refRates, refRate), append(capRates, capRate), append(ratios, capRate/refRate)
		fmt.Fprintf(out, "| %d | %v | %s | %v (%d MB) | %.0f | %v | %.0f | %.2f | %v | %s |\n", i+1, took.Round(10*time.Millisecond), first,
			ref.Round(time.Millisecond), refBytes>>20, refRate, d.took.Round(time.Millisecond), capRate, capRate/refRate,
			d.confirmTook.Round(time.Millisecond), mb(d.hwmKB))
		b.logf("run %d: pg_recvlogical %.0f rows/s, capture %.0f rows/s (first message after %v), ratio %.2f", i+1, refRate, capRate, d.first.Round(time.Millisecond), capRate/refRate)
		// In-process, the bench process's CPU is capture's too: no bound
		// for a free capture then.
		others := perRow(d.walsender, n) + perRow(d.self, n)
		capCPU, bound, free := "n/a (in-process: in the bench process)", fmt.Sprintf("%.2f", ceiling(others, refRate)), "n/a"
		if d.cpu > 0 {
			capCPU = fmt.Sprintf("%.1f", perRow(d.cpu, n))
			free = bound // others holds no capture CPU here
			bound = fmt.Sprintf("%.2f", ceiling(others+perRow(d.cpu, n), refRate))
		}
		cpuRows = append(cpuRows, fmt.Sprintf("| %d | %.1f | %.1f | %.1f | %s | %s | %s |", i+1,
			perRow(refWalsender, n), perRow(d.walsender, n), perRow(d.self, n), capCPU, bound, free))
	}
	fmt.Fprintf(out, "| **median** | | | | **%.0f** | | **%.0f** | **%.2f** | | |\n\n", median(refRates), median(capRates), median(ratios))
	fmt.Fprintln(out, "CPU per row (µs; CPU time of the process over the drain ÷ rows), and the ratio the")
	fmt.Fprintf(out, "CPU allows on %d cores: with this capture, and with a capture costing nothing:\n", runtime.NumCPU())
	fmt.Fprintln(out)
	fmt.Fprintln(out, "| run | walsender, pg_recvlogical run | walsender, capture run | bench process (nats-server), capture run | capture process | ratio bound | bound, free capture |")
	fmt.Fprintln(out, "| --- | --- | --- | --- | --- | --- | --- |")
	for _, r := range cpuRows {
		fmt.Fprintln(out, r)
	}
	fmt.Fprintln(out)
	return nil
}

// ceiling is the capture/pg_recvlogical ratio that perRow µs of CPU per row
// allow when every core works for the pipeline and nothing else:
// NumCPU rows every perRow µs, against pg_recvlogical's measured rate.
func ceiling(perRow, refRate float64) float64 {
	if perRow <= 0 || refRate <= 0 {
		return 0
	}
	return float64(runtime.NumCPU()) * 1e6 / perRow / refRate
}

func mb(kb int64) string {
	if kb == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f MB", float64(kb)/1024)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (b *bench) rss(ctx context.Context, out io.Writer) error {
	if b.o.inProcess {
		return errors.New("peak RSS needs capture as its own process (drop -in-process)")
	}
	w, err := b.newWorld(ctx)
	if err != nil {
		return err
	}
	defer b.dropWorld(w)
	b.logf("rss: writing %d rows with pgbench …", b.o.rssRows)
	end, took, err := b.backlog(ctx, w, b.o.rssRows)
	if err != nil {
		return err
	}
	n := b.o.rssRows / min(b.o.clients, b.o.rssRows) * min(b.o.clients, b.o.rssRows)
	b.logf("rss: %d rows in %v; capture draining …", n, took.Round(time.Second))
	d, err := b.drain(ctx, w, n, end)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "## Peak RSS: capture process draining a %d-row backlog\n\n", n)
	fmt.Fprintln(out, "| backlog written (pgbench) | capture drain → acked | rows/s | slot confirmed to end | VmHWM (peak RSS) | VmRSS at end |")
	fmt.Fprintln(out, "| --- | --- | --- | --- | --- | --- |")
	fmt.Fprintf(out, "| %v | %v | %.0f | %v | **%s** | %s |\n\n", took.Round(time.Second), d.took.Round(time.Millisecond),
		float64(n)/d.took.Seconds(), d.confirmTook.Round(time.Millisecond), mb(d.hwmKB), mb(d.rssKB))
	return nil
}

func (b *bench) latencyRuns(ctx context.Context, out io.Writer) error {
	fmt.Fprintf(out, "## Latency: %d rows/s for %v, commit → stored in FORMS (PubAck)\n\n", b.o.rate, b.o.latency)
	fmt.Fprintln(out, "| run | rows | p50 | p90 | p99 | max | p99 insert-sent → stored |")
	fmt.Fprintln(out, "| --- | --- | --- | --- | --- | --- | --- |")
	var p50s, p99s []float64
	for i := range b.o.latencyRuns {
		r, err := b.latencyOnce(ctx)
		if err != nil {
			return err
		}
		p50s, p99s = append(p50s, ms(r.p50)), append(p99s, ms(r.p99))
		fmt.Fprintf(out, "| %d | %d | %.1f ms | %.1f ms | %.1f ms | %.1f ms | %.1f ms |\n", i+1, r.n, ms(r.p50), ms(r.p90), ms(r.p99), ms(r.max), ms(r.sentP99))
		b.logf("latency run %d: p50 %.1f ms, p99 %.1f ms", i+1, ms(r.p50), ms(r.p99))
	}
	fmt.Fprintf(out, "| **median** | | **%.1f ms** | | **%.1f ms** | | |\n\n", median(p50s), median(p99s))
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

type latencyResult struct {
	n                           int
	p50, p90, p99, max, sentP99 time.Duration
}

func (b *bench) latencyOnce(ctx context.Context) (latencyResult, error) {
	var r latencyResult
	w, err := b.newWorld(ctx)
	if err != nil {
		return r, err
	}
	defer b.dropWorld(w)
	c, err := pgx.Connect(ctx, w.dsn)
	if err != nil {
		return r, err
	}
	defer c.Close(context.Background())
	p, err := b.startCapture(ctx, w)
	if err != nil {
		return r, err
	}
	defer p.stop()
	for start := time.Now(); ; {
		var active bool
		_ = c.QueryRow(ctx, "SELECT active FROM pg_replication_slots WHERE slot_name = $1", captureSlot).Scan(&active)
		if active {
			break
		}
		if time.Since(start) > 30*time.Second {
			return r, errors.New("capture did not start streaming within 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)

	s, err := form.Samples()
	if err != nil {
		return r, err
	}
	q := form.InsertSQL("public.form_submissions")
	args := s[0].Args()
	ci := slices.IndexFunc(form.FormColumns, func(c struct{ Name, Type string }) bool { return c.Name == "Comments" })
	n := int(b.o.latency.Seconds() * float64(b.o.rate))
	sent := make([]time.Time, n)
	b.logf("latency: %d rows at %d/s …", n, b.o.rate)
	t := time.NewTicker(time.Second / time.Duration(b.o.rate))
	for i := range n {
		<-t.C
		args[ci] = "latency row " + strconv.Itoa(i)
		sent[i] = time.Now()
		if _, err := c.Exec(ctx, q, args...); err != nil {
			t.Stop()
			return r, err
		}
	}
	t.Stop()

	nc, err := nats.Connect(w.nats.URL())
	if err != nil {
		return r, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return r, err
	}
	for start := time.Now(); streamMsgs(ctx, js) < uint64(n); {
		if time.Since(start) > 30*time.Second {
			return r, fmt.Errorf("FORMS holds %d of %d messages", streamMsgs(ctx, js), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	st, err := js.Stream(ctx, stream.Forms)
	if err != nil {
		return r, err
	}
	var lat, fromSent []time.Duration
	for seq := uint64(1); seq <= uint64(n); seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			return r, err
		}
		ev, err := stream.Unmarshal(m.Data)
		if err != nil {
			return r, err
		}
		lat = append(lat, m.Time.Sub(ev.GetSource().GetCommitTime().AsTime()))
		if i, err := strconv.Atoi(strings.TrimPrefix(form.String(ev, "Comments"), "latency row ")); err == nil && i < n {
			fromSent = append(fromSent, m.Time.Sub(sent[i]))
		}
	}
	slices.Sort(lat)
	slices.Sort(fromSent)
	r.n = len(lat)
	r.p50, r.p90, r.p99, r.max = pct(lat, 0.50), pct(lat, 0.90), pct(lat, 0.99), lat[len(lat)-1]
	r.sentP99 = pct(fromSent, 0.99)
	return r, nil
}

func pct(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
