// Package console is `ticketer console`: the operators' web console —
// overview, dead letters and replay, trace, audit — server-rendered with
// html/template (a little JavaScript refreshes the overview in place), and
// the JSON API under /api/. Sign-in is webauth's; every replay goes through
// internal/replay and is recorded in FORMS_AUDIT (internal/audit).
package console

import (
	"github.com/cowjacket/formjira/internal/config"
	"github.com/cowjacket/formjira/internal/ticketer"
	"github.com/cowjacket/formjira/internal/webauth"
)

// Config is the CONSOLE_* variables.
type Config struct {
	Addr string
	Auth webauth.Config
}

// LoadConfig reads ticketer's configuration and the console's; the error
// is one line naming the variable.
func LoadConfig(getenv func(string) string) (*ticketer.Config, Config, error) {
	tc, err := ticketer.LoadConfig(getenv)
	if err != nil {
		return nil, Config{}, err
	}
	r := config.NewReader(getenv, ticketer.Vars)
	c := Config{
		Addr: r.String("CONSOLE_ADDR"),
		Auth: webauth.Config{
			UsersFile: r.String("CONSOLE_USERS_FILE"),
			Operators: r.List("CONSOLE_OPERATORS"),
			URL:       r.URL("CONSOLE_URL", "http", "https"),
			OIDC: webauth.OIDCConfig{
				Issuer:       r.URL("CONSOLE_OIDC_ISSUER", "http", "https"),
				ClientID:     r.String("CONSOLE_OIDC_CLIENT_ID"),
				ClientSecret: r.Secret("CONSOLE_OIDC_CLIENT_SECRET"),
				Operators:    r.List("CONSOLE_OIDC_OPERATORS"),
			},
		},
	}
	if err := r.Err(); err != nil {
		return nil, Config{}, err
	}
	return tc, c, nil
}
