package capture

import (
	"os"
	"runtime"
	"testing"
)

// TuneProcs gives capture one P, unless the environment says otherwise.
func TestTuneProcs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	t.Setenv("GOMAXPROCS", "2")
	runtime.GOMAXPROCS(2)
	TuneProcs()
	if got := runtime.GOMAXPROCS(0); got != 2 {
		t.Errorf("with GOMAXPROCS=2 set: GOMAXPROCS %d, want 2", got)
	}
	os.Unsetenv("GOMAXPROCS")
	TuneProcs()
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Errorf("without GOMAXPROCS: GOMAXPROCS %d, want 1", got)
	}
	runtime.GOMAXPROCS(2)
	t.Setenv("GOMAXPROCS", "") // the runtime reads it as unset
	TuneProcs()
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Errorf("with GOMAXPROCS empty: GOMAXPROCS %d, want 1", got)
	}
}
