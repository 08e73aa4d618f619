package capture

import (
	"os"
	"runtime"
	"runtime/debug"
)

// TuneGC sets the collector for the capture process (cmd/capture's service,
// and the benchmark running it in-process): its live heap is small and
// bounded (MAX_IN_FLIGHT rows) while rows stream through it, so a higher
// GOGC spends memory it does not need for CPU it does, and a soft limit
// keeps the heap within its budget whatever the rate. GOGC / GOMEMLIMIT in
// the process environment (which the Go runtime reads) win. See
// BENCHMARKS.md.
func TuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(96 << 20)
	}
}

// TuneProcs runs the capture process on one P unless GOMAXPROCS is set
// (empty counts as unset, as for the runtime).
// Capture is one pipeline: one goroutine reads, decodes, encodes and
// publishes, the others (nats.go's flusher and reader, the acknowledgement
// handler) take turns with it. With more Ps every hand-off wakes another
// thread (nats.go kicks its flusher on each publish), and those wake-ups
// cost more CPU than the work handed off; on one P the hand-off is a
// goroutine switch. Measured in BENCHMARKS.md (capture CPU per row and
// context switches). Not for the in-process benchmark, whose process is
// nats-server too, nor for tests running the service in theirs.
func TuneProcs() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
}
