package jirasandbox

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// sharedJiraDirs are where the shared contract folder (jira/ beside the
// repository) sits relative to this package in the checkouts we know: a
// main checkout (../../../shared/jira) and a worktree one level deeper.
// FORMJIRA_SHARED_JIRA names it anywhere else.
var sharedJiraDirs = []string{"../../../shared/jira", "../../../../shared/jira"}

func embeddedFixtures(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := fs.WalkDir(fixtureFS, "fixtures", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fixtureFS.ReadFile(p)
		out[filepath.Base(p)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestFixturesAreTheSharedContract: the embedded fixtures are, byte for
// byte, the shared jira/ folder's JSON files. The folder's place relative
// to a checkout is not fixed (a worktree sits deeper; CI may have none),
// so the test always compares against testdata/shared-jira.sha256, a
// sha256sum of that folder taken when the fixtures were copied, and
// against the folder itself wherever it is found.
func TestFixturesAreTheSharedContract(t *testing.T) {
	embedded := embeddedFixtures(t)
	manifest, err := os.ReadFile("testdata/shared-jira.sha256")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(manifest))
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("bad manifest line %q", sc.Text())
		}
		listed[name] = true
		got := sha256.Sum256(embedded[name])
		if hex.EncodeToString(got[:]) != sum {
			t.Errorf("fixtures/%s differs from the shared jira/%s (sha256 %s, want %s)", name, name, hex.EncodeToString(got[:]), sum)
		}
	}
	if names := slices.Sorted(maps.Keys(embedded)); !slices.Equal(names, slices.Sorted(maps.Keys(listed))) {
		t.Errorf("embedded fixtures %v, shared folder has %v", names, slices.Sorted(maps.Keys(listed)))
	}

	dirs := sharedJiraDirs
	if d := os.Getenv("FORMJIRA_SHARED_JIRA"); d != "" {
		dirs = []string{d}
	}
	for _, dir := range dirs {
		shared, err := filepath.Glob(filepath.Join(dir, "*.json"))
		if err != nil || len(shared) == 0 {
			continue
		}
		t.Logf("comparing with %s", dir)
		if len(shared) != len(embedded) {
			t.Errorf("%s has %d JSON files, the sandbox embeds %d", dir, len(shared), len(embedded))
		}
		for _, p := range shared {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, embedded[filepath.Base(p)]) {
				t.Errorf("fixtures/%s differs from %s: copy it again (and refresh testdata/shared-jira.sha256)", filepath.Base(p), p)
			}
		}
		return
	}
	t.Logf("shared jira/ folder not found from here (tried %v): checked against testdata/shared-jira.sha256 only", dirs)
}
