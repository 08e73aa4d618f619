package capture

import (
	"os"
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
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(400)
	}
	if _, ok := os.LookupEnv("GOMEMLIMIT"); !ok {
		debug.SetMemoryLimit(96 << 20)
	}
}
