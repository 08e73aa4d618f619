// Package deploy_test checks the production artefacts against the binaries:
// every variable they set is one a binary reads, every command exists, and
// the ports they expose are the ones HTTP_ADDR serves.
package deploy_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cowjacket/formjira/internal/alert"
	"github.com/cowjacket/formjira/internal/capture"
	"github.com/cowjacket/formjira/internal/config"
	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/ticketer"
	"go.yaml.in/yaml/v3"
)

// known is, per binary, the variables it reads.
func known() map[string]map[string]bool {
	set := func(lists ...[]config.Var) map[string]bool {
		m := map[string]bool{}
		for _, l := range lists {
			for _, v := range l {
				m[v.Name] = true
			}
		}
		return m
	}
	alerts := make([]config.Var, 0, len(alert.Vars))
	for _, v := range alert.Vars {
		alerts = append(alerts, config.Var{Name: v.Name})
	}
	return map[string]map[string]bool{
		"capture":      set(capture.Vars, alerts),
		"ticketer":     set(ticketer.Vars, alerts),
		"jira-sandbox": {"SANDBOX_EMAIL": true, "SANDBOX_TOKEN": true, "SANDBOX_PAT": true},
	}
}

// defaultPort is the port of each binary's HTTP_ADDR default.
func defaultPort(t *testing.T, bin string) string {
	t.Helper()
	vars := map[string][]config.Var{"capture": capture.Vars, "ticketer": ticketer.Vars}[bin]
	for _, v := range vars {
		if v.Name == "HTTP_ADDR" {
			return portOf(v.Default)
		}
	}
	t.Fatalf("%s has no HTTP_ADDR", bin)
	return ""
}

func portOf(addr string) string {
	i := strings.LastIndex(addr, ":")
	if i < 0 {
		return ""
	}
	return addr[i+1:]
}

func binaryExists(t *testing.T, name string) bool {
	t.Helper()
	_, err := os.Stat(filepath.Join("..", "cmd", filepath.Base(name), "main.go"))
	return err == nil
}

// firstWord of a container command: "/usr/local/bin/capture" → "capture".
func binOf(cmd []string) string {
	if len(cmd) == 0 {
		return ""
	}
	return filepath.Base(cmd[0])
}

type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Ports       []string          `yaml:"ports"`
		Healthcheck struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
		Profiles []string `yaml:"profiles"`
	} `yaml:"services"`
}

func TestCompose(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	vars := known()
	seen := map[string]bool{}
	for name, s := range c.Services {
		if !strings.HasPrefix(s.Image, "cowjacket/") {
			continue
		}
		bin := binOf(s.Command)
		seen[bin] = true
		if !binaryExists(t, bin) {
			t.Errorf("service %s runs %q: no cmd/%s", name, bin, bin)
			continue
		}
		checkSubcommand(t, "service "+name, bin, s.Command[1:])
		for k := range s.Environment {
			if !vars[bin][k] {
				t.Errorf("service %s sets %s, which %s does not read", name, k, bin)
			}
		}
		if addr, ok := s.Environment["HTTP_ADDR"]; ok {
			p := portOf(addr)
			if len(s.Ports) == 0 || !strings.HasSuffix(s.Ports[0], ":"+p) {
				t.Errorf("service %s: HTTP_ADDR port %s not published (ports %v)", name, p, s.Ports)
			}
		}
		if hc := s.Healthcheck.Test; len(hc) > 1 && hc[0] == "CMD" {
			if got := filepath.Base(hc[1]); got != bin || len(hc) < 3 || hc[2] != "healthcheck" {
				t.Errorf("service %s healthcheck %v: want [CMD %s healthcheck]", name, hc, bin)
			}
		}
	}
	for _, want := range []string{"capture", "ticketer", "jira-sandbox"} {
		if !seen[want] {
			t.Errorf("docker-compose.yml has no %s service", want)
		}
	}
	for name, s := range c.Services {
		// Official images' plain tags are often FROM scratch (nats: yes):
		// a health check that runs a shell tool needs an image that has it.
		if hc := s.Healthcheck.Test; len(hc) > 1 && hc[0] == "CMD" && (hc[1] == "wget" || hc[1] == "curl") &&
			!strings.Contains(s.Image, "alpine") {
			t.Errorf("service %s: health check runs %s, which image %s may not have (use an -alpine tag)", name, hc[1], s.Image)
		}
	}
	if !slices.Contains(c.Services["jira-sandbox"].Profiles, "sandbox") {
		t.Error("jira-sandbox must be in profile sandbox, so production compose runs against real Jira")
	}
}

type k8sDoc struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name        string            `yaml:"name"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		Replicas int `yaml:"replicas"`
		Template struct {
			Metadata struct {
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec struct {
				Containers []struct {
					Name    string   `yaml:"name"`
					Command []string `yaml:"command"`
					Args    []string `yaml:"args"`
					Env     []struct {
						Name      string `yaml:"name"`
						Value     string `yaml:"value"`
						ValueFrom struct {
							ConfigMapKeyRef struct{ Name, Key string } `yaml:"configMapKeyRef"`
							SecretKeyRef    struct{ Name, Key string } `yaml:"secretKeyRef"`
						} `yaml:"valueFrom"`
					} `yaml:"env"`
					Ports []struct {
						Name          string `yaml:"name"`
						ContainerPort int    `yaml:"containerPort"`
					} `yaml:"ports"`
					LivenessProbe  probe `yaml:"livenessProbe"`
					ReadinessProbe probe `yaml:"readinessProbe"`
				} `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

func readK8s(t *testing.T) []k8sDoc {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("k8s", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/k8s (%v)", err)
	}
	var docs []k8sDoc
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var d k8sDoc
			err := dec.Decode(&d)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			docs = append(docs, d)
		}
	}
	return docs
}

func TestKubernetes(t *testing.T) {
	docs := readK8s(t)
	vars := known()
	configMaps := map[string]map[string]string{}
	secrets := map[string]bool{}
	for _, d := range docs {
		switch d.Kind {
		case "ConfigMap":
			configMaps[d.Metadata.Name] = d.Data
		case "Secret":
			secrets[d.Metadata.Name] = true
		}
	}
	deployments := map[string]bool{}
	for _, d := range docs {
		if d.Kind != "Deployment" {
			continue
		}
		deployments[d.Metadata.Name] = true
		for _, c := range d.Spec.Template.Spec.Containers {
			bin := binOf(c.Command)
			if !binaryExists(t, bin) {
				t.Errorf("deployment %s runs %q: no such binary", d.Metadata.Name, bin)
				continue
			}
			checkSubcommand(t, "deployment "+d.Metadata.Name, bin, append(c.Command[1:], c.Args...))
			port := defaultPort(t, bin)
			for _, e := range c.Env {
				if !vars[bin][e.Name] {
					t.Errorf("deployment %s sets %s, which %s does not read", d.Metadata.Name, e.Name, bin)
				}
				if ref := e.ValueFrom.ConfigMapKeyRef; ref.Name != "" {
					if _, ok := configMaps[ref.Name][ref.Key]; !ok {
						t.Errorf("deployment %s: %s refers to missing configmap key %s/%s", d.Metadata.Name, e.Name, ref.Name, ref.Key)
					}
				}
				if ref := e.ValueFrom.SecretKeyRef; ref.Name != "" && !secrets[ref.Name] {
					t.Errorf("deployment %s: %s refers to secret %s, not described in deploy/k8s", d.Metadata.Name, e.Name, ref.Name)
				}
				if e.Name == "HTTP_ADDR" {
					port = portOf(e.Value)
				}
			}
			if len(c.Ports) == 0 || portString(c.Ports[0].ContainerPort) != port {
				t.Errorf("deployment %s: containerPort %v, want HTTP_ADDR's %s", d.Metadata.Name, c.Ports, port)
			}
			if got := d.Spec.Template.Metadata.Annotations["prometheus.io/port"]; got != port {
				t.Errorf("deployment %s: prometheus.io/port %q, want %s", d.Metadata.Name, got, port)
			}
			if c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
				t.Errorf("deployment %s: probes %q/%q, want /healthz and /readyz", d.Metadata.Name, c.LivenessProbe.HTTPGet.Path, c.ReadinessProbe.HTTPGet.Path)
			}
		}
	}
	for _, want := range []string{"capture", "ticketer"} {
		if !deployments[want] {
			t.Errorf("no %s Deployment in deploy/k8s", want)
		}
	}
}

func portString(p int) string { return strconv.Itoa(p) }

func TestSystemd(t *testing.T) {
	vars := known()
	units, _ := filepath.Glob(filepath.Join("systemd", "*.service"))
	if len(units) != 2 {
		t.Fatalf("want 2 systemd units, got %v", units)
	}
	execStart := regexp.MustCompile(`(?m)^ExecStart=(\S+)`)
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		m := execStart.FindSubmatch(b)
		if m == nil {
			t.Errorf("%s: no ExecStart", u)
			continue
		}
		bin := filepath.Base(string(m[1]))
		if !binaryExists(t, bin) {
			t.Errorf("%s runs %s: no such binary", u, bin)
		}
		envFile := filepath.Join("systemd", bin+".env.example")
		f, err := os.Open(envFile)
		if err != nil {
			t.Errorf("%s: %v", u, err)
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, _, ok := strings.Cut(sc.Text(), "=")
			if ok && !strings.HasPrefix(k, "#") && !vars[bin][k] {
				t.Errorf("%s sets %s, which %s does not read", envFile, k, bin)
			}
		}
		f.Close()
	}
}

func TestDockerfileBuildsEveryCommand(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, bin := range []string{"capture", "ticketer", "jira-sandbox"} {
		if !bytes.Contains(b, []byte("./cmd/"+bin)) {
			t.Errorf("Dockerfile does not build cmd/%s", bin)
		}
	}
	if !bytes.Contains(b, []byte("nonroot")) {
		t.Error("Dockerfile image must run as non-root")
	}
}

// TestReadmeDocumentsEveryVariable keeps the README's configuration
// reference true: every variable a binary reads is named there.
func TestReadmeDocumentsEveryVariable(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for bin, vars := range known() {
		if bin == "jira-sandbox" {
			continue
		}
		for name := range vars {
			if !bytes.Contains(b, []byte("`"+name+"`")) {
				t.Errorf("README.md does not document %s (read by %s)", name, bin)
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
	if string(b) != form.SchemaSQL {
		t.Error("deploy/postgres/01-schema.sql differs from internal/form/fixtures/schema.sql")
	}
}

// subcommands each binary accepts as its first argument ("" = the service).
var subcommands = map[string][]string{
	"capture":  {"", "backfill", "status", "healthcheck"},
	"ticketer": {"", "check", "dlq", "replay", "stats", "healthcheck"},
}

// checkSubcommand fails when a manifest would start a binary with an
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

// The Kubernetes mapping ConfigMap must carry exactly deploy/mapping.yaml.
func TestMappingConfigMapEqualsMapping(t *testing.T) {
	want, err := os.ReadFile("mapping.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range readK8s(t) {
		if d.Kind == "ConfigMap" && d.Metadata.Name == "cowjacket-mapping" {
			if got := d.Data["mapping.yaml"]; got != string(want) {
				t.Error("deploy/k8s/mapping-configmap.yaml differs from deploy/mapping.yaml: regenerate it (see its header)")
			}
			return
		}
	}
	t.Error("no ConfigMap cowjacket-mapping in deploy/k8s (ticketer mounts it)")
}
