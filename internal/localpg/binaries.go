package localpg

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// ErrBinariesNotFound is returned by Start when no PostgreSQL server
// binaries are installed. Integration tests fail with it rather than skip, so
// a machine without Postgres cannot silently pass CI.
var ErrBinariesNotFound = errors.New("PostgreSQL server binaries not found (initdb, postgres): install them, e.g. `apt-get install postgresql`")

// binaries are the server programs Start runs.
type binaries struct {
	initdb, postgres string
}

// findBinaries looks in $PG_BIN, then the highest version under
// /usr/lib/postgresql/*/bin (Debian keeps them off PATH), then PATH.
func findBinaries() (binaries, error) {
	if dir := os.Getenv("PG_BIN"); dir != "" {
		b, ok := binariesIn(dir)
		if !ok {
			return binaries{}, fmt.Errorf("PG_BIN=%s has no initdb and postgres: %w", dir, ErrBinariesNotFound)
		}
		return b, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		return versionLess(filepath.Base(filepath.Dir(dirs[j])), filepath.Base(filepath.Dir(dirs[i])))
	})
	for _, dir := range dirs {
		if b, ok := binariesIn(dir); ok {
			return b, nil
		}
	}
	if initdb, err := exec.LookPath("initdb"); err == nil {
		// Prefer the postgres next to initdb's real location so both come
		// from the same version even when PATH holds symlinks.
		if real, err := filepath.EvalSymlinks(initdb); err == nil {
			if b, ok := binariesIn(filepath.Dir(real)); ok {
				return b, nil
			}
		}
		if postgres, err := exec.LookPath("postgres"); err == nil {
			return binaries{initdb: initdb, postgres: postgres}, nil
		}
	}
	return binaries{}, ErrBinariesNotFound
}

func binariesIn(dir string) (binaries, bool) {
	b := binaries{initdb: filepath.Join(dir, "initdb"), postgres: filepath.Join(dir, "postgres")}
	return b, isExecutable(b.initdb) && isExecutable(b.postgres)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// versionLess compares dotted versions numerically ("9.6" < "15").
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		x, _ := strconv.Atoi(as[i])
		y, _ := strconv.Atoi(bs[i])
		if x != y {
			return x < y
		}
	}
	return len(as) < len(bs)
}
