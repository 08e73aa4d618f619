package deploy_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/cowjacket/formjira/internal/testsupport"
)

// The nsc commands of docs/security.md give each user exactly the
// permissions nats-server.conf gives it, so the decentralized setup is the
// same least privilege.
func TestSecurityDocNscUsers(t *testing.T) {
	b, err := os.ReadFile("../docs/security.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := testsupport.DocBlocksTagged(string(b), "nsc-user")
	conf := serverConf(t)
	flag := regexp.MustCompile(`--(allow-pub|deny-pub|allow-sub) '([^']*)'`)
	for _, u := range conf.Users {
		lines, ok := blocks[u.Username]
		if !ok {
			t.Errorf("docs/security.md has no nsc-user block for %s", u.Username)
			continue
		}
		got := map[string][]string{}
		for _, m := range flag.FindAllStringSubmatch(strings.Join(lines, " "), -1) {
			got[m[1]] = strings.Split(m[2], ",")
		}
		p := u.Permissions
		for name, want := range map[string][]string{"allow-pub": p.Publish.Allow, "deny-pub": p.Publish.Deny, "allow-sub": p.Subscribe.Allow} {
			if !slices.Equal(got[name], want) {
				t.Errorf("nsc user %s --%s %v, nats-server.conf has %v", u.Username, name, got[name], want)
			}
		}
	}
}
