package deploy_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/distribution/reference"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// dockerStage is one FROM … stage of a parsed Dockerfile.
type dockerStage struct {
	from  string
	nodes []*parser.Node
}

// args are the words after an instruction, unquoted.
func args(n *parser.Node) []string {
	var out []string
	for a := n.Next; a != nil; a = a.Next {
		out = append(out, strings.Trim(a.Value, `"`))
	}
	return out
}

func readDockerfile(t *testing.T) []dockerStage {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f) // BuildKit's own parser, as docker build uses it
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	for _, w := range res.Warnings {
		t.Errorf("Dockerfile:%d: %s", w.Location.Start.Line, w.Short)
	}
	var stages []dockerStage
	for _, n := range res.AST.Children {
		if strings.EqualFold(n.Value, "from") {
			stages = append(stages, dockerStage{from: args(n)[0]})
			continue
		}
		if len(stages) == 0 {
			continue // ARG before FROM
		}
		stages[len(stages)-1].nodes = append(stages[len(stages)-1].nodes, n)
	}
	if len(stages) == 0 {
		t.Fatal("Dockerfile has no FROM")
	}
	return stages
}

// TestDockerfile: the image builds every command, runs as non-root, pins
// its base images, and is labelled with the release the deploy files pin
// (ARG VERSION, default deploy/VERSION, in org.opencontainers.image.version).
func TestDockerfile(t *testing.T) {
	stages := readDockerfile(t)
	var run strings.Builder
	for _, s := range stages {
		if named, err := reference.ParseNormalizedNamed(s.from); err != nil {
			t.Errorf("FROM %s: %v", s.from, err)
		} else if tagged, ok := named.(reference.Tagged); !ok || tagged.Tag() == "latest" {
			if _, digested := named.(reference.Digested); !digested {
				t.Errorf("FROM %s: pin a tag or digest", s.from)
			}
		}
		for _, n := range s.nodes {
			if strings.EqualFold(n.Value, "run") {
				run.WriteString(strings.Join(args(n), " ") + "\n")
			}
		}
	}
	for _, bin := range []string{"capture", "ticketer", "jira-sandbox"} {
		if !strings.Contains(run.String(), "./cmd/"+bin) {
			t.Errorf("Dockerfile does not build cmd/%s", bin)
		}
	}
	final := stages[len(stages)-1]
	var user, version, label string
	for _, n := range final.nodes {
		a := args(n)
		switch strings.ToLower(n.Value) {
		case "user":
			user = a[0]
		case "arg":
			if k, v, ok := strings.Cut(a[0], "="); ok && k == "VERSION" {
				version = v
			}
		case "label":
			for i := 0; i+1 < len(a); i += 2 {
				if a[i] == "org.opencontainers.image.version" {
					label = a[i+1]
				}
			}
		}
	}
	if u, _, _ := strings.Cut(user, ":"); u != "nonroot" && u != "65532" {
		t.Errorf("the image runs as %q: want nonroot (65532, the manifests' runAsUser)", user)
	}
	if want := pinnedVersion(t); version != want {
		t.Errorf("the final stage's ARG VERSION defaults to %q, want %s (deploy/VERSION)", version, want)
	}
	if label != "${VERSION}" && label != "$VERSION" {
		t.Errorf("LABEL org.opencontainers.image.version=%q: want ${VERSION}", label)
	}
}
