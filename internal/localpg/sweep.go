package localpg

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ownerFile in a temporary directory records the pid of the process that
// created it. A test binary killed by Ctrl-C or a timeout never runs Stop
// (its postgres dies with it through Pdeathsig), so the next Start removes
// such leftovers instead of letting ~40 MB per run pile up in /tmp.
const ownerFile = "localpg.owner"

func markOwned(dir string) error {
	return os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644)
}

// sweepOrphans removes localpg temporary directories under parent whose
// creating process is gone. Directories without an owner file are left
// alone: they are not ours to judge.
func sweepOrphans(parent string) {
	dirs, _ := filepath.Glob(filepath.Join(parent, "localpg-*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			continue
		}
		if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			_ = os.RemoveAll(dir)
		}
	}
}
