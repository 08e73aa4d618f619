package deploy_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/coreos/go-systemd/v22/unit"
)

// unitFile is a parsed systemd unit.
type unitFile struct {
	path string
	opts []*unit.UnitOption
}

func (u unitFile) values(section, name string) []string {
	var out []string
	for _, o := range u.opts {
		if o.Section == section && o.Name == name {
			out = append(out, o.Value)
		}
	}
	return out
}

func readUnits(t *testing.T) []unitFile {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join("systemd", "*.service"))
	if len(paths) != 2 {
		t.Fatalf("want 2 systemd units, got %v", paths)
	}
	var out []unitFile
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		opts, err := unit.DeserializeOptions(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out = append(out, unitFile{p, opts})
	}
	return out
}

// TestSystemd: each unit (parsed with go-systemd) runs a binary that
// exists, from an EnvironmentFile whose example sets only variables that
// binary reads, and systemd itself (systemd-analyze verify) accepts it.
func TestSystemd(t *testing.T) {
	vars := known()
	for _, u := range readUnits(t) {
		exec := u.values("Service", "ExecStart")
		if len(exec) != 1 {
			t.Errorf("%s: ExecStart %q, want one", u.path, exec)
			continue
		}
		argv := strings.Fields(exec[0])
		bin := filepath.Base(argv[0])
		if !binaryExists(bin) {
			t.Errorf("%s runs %s: no such binary", u.path, bin)
			continue
		}
		checkSubcommand(t, u.path, bin, argv[1:])
		envFiles := u.values("Service", "EnvironmentFile")
		if len(envFiles) != 1 || filepath.Base(envFiles[0]) != bin+".env" {
			t.Errorf("%s: EnvironmentFile %q, want one /etc/cowjacket/%s.env", u.path, envFiles, bin)
		}
		example := filepath.Join("systemd", bin+".env.example")
		env, err := dotenv.GetEnvFromFile(nil, []string{example})
		if err != nil {
			t.Errorf("%s: %v", example, err)
			continue
		}
		if len(env) == 0 {
			t.Errorf("%s sets nothing", example)
		}
		for k := range env {
			if !vars[bin][k] {
				t.Errorf("%s sets %s, which %s does not read", example, k, bin)
			}
			if varOf(bin, k).Secret {
				t.Errorf("%s sets secret %s: make it a credential (LoadCredential=, %s_FILE=%%d/…)", example, k, k)
			}
		}
		creds := map[string]bool{}
		for _, c := range u.values("Service", "LoadCredential") {
			id, _, _ := strings.Cut(c, ":")
			creds[id] = true
		}
		for _, k := range u.values("Service", "Environment") {
			name, val, _ := strings.Cut(strings.Trim(k, `"`), "=")
			if !vars[bin][name] {
				t.Errorf("%s sets %s, which %s does not read", u.path, name, bin)
			}
			if id, ok := strings.CutPrefix(val, "%d/"); ok && !creds[id] {
				t.Errorf("%s: %s=%s names no LoadCredential", u.path, name, val)
			}
		}
		// capture's promise: finished within 10 s of SIGTERM.
		if got := u.values("Service", "TimeoutStopSec"); len(got) != 1 || atoi(strings.TrimSuffix(got[0], "s")) <= 10 {
			t.Errorf("%s: TimeoutStopSec %v, want more than the 10 s the binaries take to stop", u.path, got)
		}
		if msg := systemdVerify(t, u); msg != "" {
			t.Errorf("systemd-analyze verify %s:\n%s", u.path, msg)
		}
	}
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}

// systemdVerify runs systemd-analyze verify on u in a root directory made
// of this machine's system units, the unit, and a stand-in for the binary
// it starts (verify checks that ExecStart is executable), and returns what
// systemd says about it: any message (unknown keys, bad values) is a
// finding. systemd-analyze must be there (scripts/ensure-deps.sh installs
// it): a missing tool fails the test rather than skip the check.
func systemdVerify(t *testing.T, u unitFile) string {
	t.Helper()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatalf("no systemd-analyze on this machine (scripts/ensure-deps.sh installs it): %v", err)
	}
	root := t.TempDir()
	units := "/usr/lib/systemd/system"
	if _, err := os.Stat(units); err != nil {
		units = "/lib/systemd/system"
	}
	lib := filepath.Join(root, "usr", "lib", "systemd")
	etc := filepath.Join(root, "etc", "systemd", "system")
	for _, d := range []string{lib, etc} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("cp", "-a", units, lib).CombinedOutput(); err != nil {
		t.Fatalf("copy %s: %v\n%s", units, err, out)
	}
	b, err := os.ReadFile(u.path)
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(etc, filepath.Base(u.path))
	if err := os.WriteFile(target, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, e := range u.values("Service", "ExecStart") {
		stub := filepath.Join(root, strings.TrimLeft(strings.Fields(e)[0], "-@:+!"))
		if err := os.MkdirAll(filepath.Dir(stub), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(stub, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(analyze, "verify", "--man=no", "--root="+root, target).CombinedOutput()
	if msg := strings.TrimSpace(string(bytes.ReplaceAll(out, []byte(root), nil))); err != nil || msg != "" {
		if msg == "" {
			msg = err.Error()
		}
		return msg
	}
	return ""
}

// verify must be able to fail: a misspelt directive and a bad value are
// reported.
func TestSystemdVerifyCanFail(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.service")
	if err := os.WriteFile(bad, []byte("[Unit]\nDescription=x\n[Service]\nExecStart=/usr/local/bin/capture\nRestart=alwayz\nExecStrat=/x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(bad)
	opts, err := unit.DeserializeOptions(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	u := unitFile{bad, opts}
	if len(u.values("Service", "ExecStart")) != 1 {
		t.Fatal("go-systemd does not read ExecStart")
	}
	{
		msg := systemdVerify(t, u)
		for _, want := range []string{"alwayz", "ExecStrat"} {
			if !strings.Contains(msg, want) {
				t.Errorf("systemd-analyze verify did not report %s: %q", want, msg)
			}
		}
	}
	if _, err := unit.DeserializeOptions(strings.NewReader("[Service\nExecStart=/x\n")); err == nil {
		t.Error("go-systemd parsed a broken section header")
	}
}
