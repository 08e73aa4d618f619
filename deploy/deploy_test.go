// Package deploy_test checks the production artefacts with the parsers the
// real tools use (Kubernetes' API types with strict decoding, compose-go,
// Prometheus' rule parser, systemd-analyze) and against the binaries: every
// variable they set is one a binary reads, every command exists, the ports
// are the ones HTTP_ADDR serves, every metric an alert names is exported,
// and every image of ours is the pinned release. rollout_test.go simulates
// the Deployment controller over the shipped rollout strategies.
package deploy_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/distribution/reference"
)

// repoRoot is the repository, seen from this package's directory.
const repoRoot = ".."

// known is, per binary, the variables it reads.
func known() map[string]map[string]bool {
	out := map[string]map[string]bool{
		"jira-sandbox": {"SANDBOX_EMAIL": true, "SANDBOX_TOKEN": true, "SANDBOX_PAT": true},
	}
	for bin, vars := range binaryVars() {
		out[bin] = map[string]bool{}
		for _, v := range vars {
			out[bin][v.Name] = true
		}
	}
	return out
}

// varOf is variable name of binary bin (the zero value if it reads none).
func varOf(bin, name string) binaryVar {
	for _, v := range binaryVars()[bin] {
		if v.Name == name {
			return v
		}
	}
	return binaryVar{}
}

// varDefault is the default of variable name in binary bin.
func varDefault(t *testing.T, bin, name string) string {
	t.Helper()
	for _, v := range binaryVars()[bin] {
		if v.Name == name {
			return v.Default
		}
	}
	t.Fatalf("%s does not read %s", bin, name)
	return ""
}

// defaultPort is the port of each binary's HTTP_ADDR default.
func defaultPort(t *testing.T, bin string) string {
	t.Helper()
	return portOf(varDefault(t, bin, "HTTP_ADDR"))
}

func portOf(addr string) string {
	i := strings.LastIndex(addr, ":")
	if i < 0 {
		return ""
	}
	return addr[i+1:]
}

func binaryExists(name string) bool {
	_, err := os.Stat(filepath.Join(repoRoot, "cmd", filepath.Base(name), "main.go"))
	return err == nil
}

// binOf is the binary a container command runs: "/usr/local/bin/capture" → "capture".
func binOf(cmd []string) string {
	if len(cmd) == 0 {
		return ""
	}
	return filepath.Base(cmd[0])
}

// subcommands each binary accepts as its first argument ("" = the service).
var subcommands = map[string][]string{
	"capture":  {"", "backfill", "status", "healthcheck"},
	"ticketer": {"", "check", "dlq", "replay", "stats", "trace", "console", "healthcheck"},
}

// checkSubcommand fails when a deploy file would start a binary with an
// argument it does not take (e.g. `capture capture`: exit 1, crash loop).
func checkSubcommand(t *testing.T, where, bin string, args []string) {
	t.Helper()
	valid, ok := subcommands[bin]
	if !ok {
		return // jira-sandbox takes flags
	}
	first := ""
	if len(args) > 0 {
		first = args[0]
	}
	if !slices.Contains(valid, first) {
		t.Errorf("%s runs %s %v: %q is not a %s subcommand", where, bin, args, first, bin)
	}
}

// ourImage is the repository of the image Dockerfile builds.
const ourImage = "docker.io/cowjacket/formjira"

// pinnedVersion is the release every deploy file runs (deploy/VERSION).
func pinnedVersion(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("VERSION")
	if err != nil {
		t.Fatal(err)
	}
	v := strings.TrimSpace(string(b))
	repo, err := reference.ParseNormalizedNamed(ourImage)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reference.WithTag(repo, v); err != nil || v == "latest" {
		t.Fatalf("deploy/VERSION %q is not a release tag (%v)", v, err)
	}
	return v
}

// checkOurImage fails unless ref is cowjacket/formjira at the pinned
// version; it reports whether ref is ours at all.
func checkOurImage(t *testing.T, where, ref string) bool {
	t.Helper()
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		t.Errorf("%s: image %q: %v", where, ref, err)
		return false
	}
	if named.Name() != ourImage {
		return false
	}
	tagged, ok := named.(reference.Tagged)
	switch want := pinnedVersion(t); {
	case !ok:
		t.Errorf("%s: image %q has no tag: want %s:%s", where, ref, ourImage, want)
	case tagged.Tag() != want:
		t.Errorf("%s: image %q: want tag %s (deploy/VERSION), not %s", where, ref, want, tagged.Tag())
	}
	return true
}

// TestReadmeDocumentsEveryVariable keeps the README's configuration
// reference true: every variable a binary reads is named there.
func TestReadmeDocumentsEveryVariable(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for bin, vars := range binaryVars() {
		for _, v := range vars {
			if !strings.Contains(string(b), "`"+v.Name+"`") {
				t.Errorf("README.md does not document %s (read by %s)", v.Name, bin)
			}
		}
	}
}

// The compose init script must create the table exactly as the product
// (tests, demo) knows it.
func TestPostgresSchemaMatchesForm(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("postgres", "01-schema.sql"))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != formSchemaSQL() {
		t.Error("deploy/postgres/01-schema.sql differs from the form package's schema.sql")
	}
}
