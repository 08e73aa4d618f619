package deploy_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// loadCompose loads docker-compose.yml the way `docker compose` does
// (compose-go: schema validation, interpolation, normalisation), with
// .env.example as its .env and the given profiles.
// The process environment is left out, so the result does not depend on
// the machine.
func loadCompose(t *testing.T, profiles ...string) (*types.Project, error) {
	t.Helper()
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root),
		cli.WithEnvFiles(filepath.Join(root, ".env.example")),
		cli.WithDotEnv,
		cli.WithProfiles(profiles),
	)
	if err != nil {
		t.Fatal(err)
	}
	return opts.LoadProject(context.Background())
}

// TestCompose: docker-compose.yml loads with and without the sandbox
// profile, with .env.example providing every variable it requires; our
// services run binaries that exist, with variables they read, publish the
// port HTTP_ADDR serves and run our image at the pinned version.
func TestCompose(t *testing.T) {
	for _, tc := range []struct {
		profiles []string
		want     []string // services that run
		disabled []string
	}{
		{nil, []string{"postgres", "nats", "capture", "ticketer"}, []string{"jira-sandbox"}},
		{[]string{"sandbox"}, []string{"postgres", "nats", "capture", "ticketer", "jira-sandbox"}, nil},
	} {
		t.Run("profiles="+strings.Join(tc.profiles, ","), func(t *testing.T) {
			p, err := loadCompose(t, tc.profiles...)
			if err != nil {
				t.Fatalf("docker-compose.yml: %v", err)
			}
			if got := p.ServiceNames(); !sameSet(got, tc.want) {
				t.Errorf("services %v, want %v", got, tc.want)
			}
			if got := p.DisabledServiceNames(); !sameSet(got, tc.disabled) {
				t.Errorf("disabled services %v, want %v (jira-sandbox only with --profile sandbox, so production compose runs against real Jira)", got, tc.disabled)
			}
			for _, s := range p.Services {
				checkComposeService(t, s)
			}
		})
	}
}

// The compose file refuses to start without the secrets .env must set.
func TestComposeRequiresSecrets(t *testing.T) {
	root, _ := filepath.Abs(repoRoot)
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root), cli.WithEnvFiles(os.DevNull), cli.WithDotEnv)
	if err != nil {
		t.Fatal(err)
	}
	_, err = opts.LoadProject(context.Background())
	if err == nil || !strings.Contains(err.Error(), "POSTGRES_PASSWORD") {
		t.Errorf("loaded without POSTGRES_PASSWORD: %v", err)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func checkComposeService(t *testing.T, s types.ServiceConfig) {
	t.Helper()
	where := "service " + s.Name
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind {
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("%s mounts %s: %v", where, v.Source, err)
			}
		}
	}
	// Official images' plain tags are often FROM scratch (nats: yes): a
	// health check that runs a shell tool needs an image that has it.
	if hc := s.HealthCheck; hc != nil && len(hc.Test) > 1 && hc.Test[0] == "CMD" &&
		(hc.Test[1] == "wget" || hc.Test[1] == "curl") && !strings.Contains(s.Image, "alpine") {
		t.Errorf("%s: health check runs %s, which image %s may not have (use an -alpine tag)", where, hc.Test[1], s.Image)
	}
	if !checkOurImage(t, where, s.Image) {
		return
	}
	if s.Build != nil {
		got := "(unset)"
		if v := s.Build.Args["VERSION"]; v != nil {
			got = *v
		}
		if want := pinnedVersion(t); got != want {
			t.Errorf("%s builds with VERSION %s, want %s (the tag it names)", where, got, want)
		}
	}
	bin := binOf(s.Command)
	if !binaryExists(bin) {
		t.Errorf("%s runs %q: no cmd/%s", where, bin, bin)
		return
	}
	checkSubcommand(t, where, bin, s.Command[1:])
	vars := known()
	for k, v := range s.Environment {
		if !vars[bin][k] {
			t.Errorf("%s sets %s, which %s does not read", where, k, bin)
		}
		if varOf(bin, k).Secret {
			t.Errorf("%s sets secret %s in the environment: give it as a Docker secret and set %s_FILE", where, k, k)
		}
		if varOf(bin, k).File && v != nil {
			checkComposeFile(t, s, where+" "+k, *v)
		}
	}
	if addr, ok := s.Environment["HTTP_ADDR"]; ok && addr != nil {
		port := portOf(*addr)
		published := slices.ContainsFunc(s.Ports, func(p types.ServicePortConfig) bool {
			return strconv.Itoa(int(p.Target)) == port && p.Published != ""
		})
		if !published {
			t.Errorf("%s: HTTP_ADDR port %s not published (ports %v)", where, port, s.Ports)
		}
	}
	if hc := s.HealthCheck; hc != nil && len(hc.Test) > 0 {
		if len(hc.Test) != 3 || hc.Test[0] != "CMD" || filepath.Base(hc.Test[1]) != bin || hc.Test[2] != "healthcheck" {
			t.Errorf("%s healthcheck %v: want [CMD /usr/local/bin/%s healthcheck]", where, hc.Test, bin)
		}
	}
}

// checkComposeFile fails unless path is a Docker secret of the service
// (/run/secrets/NAME) or on one of its mounts.
func checkComposeFile(t *testing.T, s types.ServiceConfig, where, path string) {
	t.Helper()
	for _, sec := range s.Secrets {
		target := sec.Target
		if target == "" {
			target = sec.Source
		}
		if !strings.HasPrefix(target, "/") {
			target = "/run/secrets/" + target
		}
		if path == target {
			return
		}
	}
	for _, v := range s.Volumes {
		if strings.HasPrefix(path, strings.TrimSuffix(v.Target, "/")+"/") || path == v.Target {
			return
		}
	}
	t.Errorf("%s=%s is neither a secret of the service nor on one of its volumes", where, path)
}

// Every Docker secret the services use is defined, taken from a variable
// that .env.example sets, so `docker compose up` creates each file.
func TestComposeSecrets(t *testing.T) {
	p, err := loadCompose(t, "sandbox")
	if err != nil {
		t.Fatal(err)
	}
	used := 0
	for _, svc := range p.Services {
		for _, ref := range svc.Secrets {
			used++
			def, ok := p.Secrets[ref.Source]
			switch {
			case !ok:
				t.Errorf("service %s uses secret %s, which is not defined", svc.Name, ref.Source)
			case def.Environment == "" && def.File == "":
				t.Errorf("secret %s has no source", ref.Source)
			case def.Environment != "" && def.Content == "":
				t.Errorf("secret %s: .env.example does not set %s", ref.Source, def.Environment)
			}
		}
	}
	if used < 4 {
		t.Errorf("%d secrets used, want the database passwords, capture's DATABASE_URL and the Jira token", used)
	}
}
