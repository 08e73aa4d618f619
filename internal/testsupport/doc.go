package testsupport

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// DocBlocks returns the ```sh blocks of the Markdown file path that follow
// a "<!-- nats-cli-test: NAME -->" line, by NAME, as command lines, so
// tests run exactly what the documentation shows.
func DocBlocks(tb testing.TB, path string) map[string][]string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return DocBlocksTagged(string(b), "nats-cli-test")
}

// DocBlocksTagged is DocBlocks of Markdown text for "<!-- tag: NAME -->"
// lines.
func DocBlocksTagged(text, tag string) map[string][]string {
	out := map[string][]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	open := "<!-- " + tag + ":"
	name, in := "", false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, open):
			name = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(line, open), "-->"))
		case name != "" && !in && line == "```sh":
			in = true
		case in && line == "```":
			in, name = false, ""
		case in && line != "" && !strings.HasPrefix(line, "#"):
			out[name] = append(out[name], line)
		}
	}
	return out
}

// NatsCLI finds the nats binary: on PATH or in $(go env GOPATH)/bin.
func NatsCLI(tb testing.TB) string {
	tb.Helper()
	if p, err := exec.LookPath("nats"); err == nil {
		return p
	}
	gopath, err := exec.Command("go", "env", "GOPATH").Output()
	if err == nil {
		p := filepath.Join(strings.TrimSpace(string(gopath)), "bin", "nats")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	tb.Fatal("the nats CLI (natscli v0.5.0) is not installed: run scripts/ensure-deps.sh")
	return ""
}

// RunDoc runs documented command lines with vars in the environment, from
// dir, and returns their combined output; a failing line fails tb.
func RunDoc(tb testing.TB, natsBin, dir string, lines []string, vars map[string]string) string {
	tb.Helper()
	env := append(os.Environ(), "PATH="+filepath.Dir(natsBin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	var all strings.Builder
	for _, line := range lines {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var cmd *exec.Cmd
		if strings.HasPrefix(line, "nats stream view") {
			// The CLI pages interactively and insists on a terminal: give it one.
			if _, err := exec.LookPath("script"); err != nil {
				tb.Fatal("`script` (util-linux) is needed to give `nats stream view` a terminal")
			}
			cmd = exec.CommandContext(ctx, "script", "-qec", line, "/dev/null")
		} else {
			cmd = exec.CommandContext(ctx, "bash", "-o", "pipefail", "-c", line)
		}
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		cancel()
		tb.Logf("$ %s\n%s", line, out)
		if err != nil {
			tb.Fatalf("%s: %v\n%s", line, err, out)
		}
		all.WriteString(string(out))
	}
	return all.String()
}
