package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// cpuWatch follows, while a drain runs, the CPU time of the walsender
// serving a slot (its pid from pg_replication_slots, its time from
// /proc/PID/stat) and of this process (nats-server runs in it; with capture
// as its own process, that is nats-server's share plus the bench's polls).
type cpuWatch struct {
	cancel context.CancelFunc
	done   chan struct{}
	self0  time.Duration

	mu   sync.Mutex
	last map[int32]time.Duration // walsender pid → CPU last read
}

const clockTick = 10 * time.Millisecond // USER_HZ is 100 on Linux

func (b *bench) watchCPU(ctx context.Context, dsn, slot string) (*cpuWatch, error) {
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(ctx)
	w := &cpuWatch{cancel: cancel, done: make(chan struct{}), self0: selfCPU(), last: map[int32]time.Duration{}}
	go func() {
		defer close(w.done)
		defer c.Close(context.Background())
		for {
			var pid *int32
			if err := c.QueryRow(wctx, "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&pid); err == nil && pid != nil {
				if t, ok := procCPU(int(*pid)); ok {
					w.mu.Lock()
					w.last[*pid] = t
					w.mu.Unlock()
				}
			}
			select {
			case <-wctx.Done():
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return w, nil
}

// stop ends the watch: the walsenders' CPU as last read, and this
// process's since the start.
func (w *cpuWatch) stop() (walsender, self time.Duration) {
	self = selfCPU() - w.self0
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, t := range w.last {
		walsender += t
	}
	return walsender, self
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU reads utime+stime of a process from /proc/PID/stat.
func procCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// Fields after the command (which may hold spaces) in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, false
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	st, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(ut+st) * clockTick, true
}

// perRow is d per row in microseconds.
func perRow(d time.Duration, n int) float64 {
	return float64(d) / float64(time.Microsecond) / float64(n)
}
