package webauth

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/cowjacket/formjira/internal/config"
)

// oidcSource signs in with an OpenID Connect provider (authorization code
// flow with PKCE, state and nonce).
type oidcSource struct {
	cfg       OIDCConfig
	provider  *oidc.Provider
	verifier  *oidc.IDTokenVerifier
	oauth     oauth2.Config
	endURL    string // end_session_endpoint, if the provider has one
	returnURL string

	mu      sync.Mutex
	pending map[string]pendingLogin // by state
}

type pendingLogin struct {
	nonce, verifier, next string
	expires               time.Time
}

const stateCookie = "console_oidc_state"

func newOIDC(ctx context.Context, c OIDCConfig, base string) (*oidcSource, error) {
	switch {
	case c.ClientID == "":
		return nil, config.Errorf("CONSOLE_OIDC_CLIENT_ID", "required with CONSOLE_OIDC_ISSUER")
	case c.ClientSecret == "":
		return nil, config.Errorf("CONSOLE_OIDC_CLIENT_SECRET", "required with CONSOLE_OIDC_ISSUER")
	case base == "":
		return nil, config.Errorf("CONSOLE_URL", "required with CONSOLE_OIDC_ISSUER (the provider redirects back to CONSOLE_URL/auth/callback)")
	}
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(pctx, c.Issuer)
	if err != nil {
		return nil, config.Errorf("CONSOLE_OIDC_ISSUER", "discovery of %s failed: %v", c.Issuer, err)
	}
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
	}
	_ = p.Claims(&meta)
	base = strings.TrimRight(base, "/")
	return &oidcSource{
		cfg: c, provider: p, verifier: p.Verifier(&oidc.Config{ClientID: c.ClientID}),
		oauth: oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, Endpoint: p.Endpoint(),
			RedirectURL: base + "/auth/callback", Scopes: []string{oidc.ScopeOpenID, "email", "profile", "groups"}},
		endURL: meta.EndSession, returnURL: base + "/login", pending: map[string]pendingLogin{},
	}, nil
}

func (a *Auth) oidcStart(w http.ResponseWriter, r *http.Request) {
	o := a.oidc
	state, nonce, verifier := randomToken(), randomToken(), oauth2.GenerateVerifier()
	o.mu.Lock()
	now := time.Now()
	for k, p := range o.pending {
		if now.After(p.expires) {
			delete(o.pending, k)
		}
	}
	o.pending[state] = pendingLogin{nonce: nonce, verifier: verifier, next: a.loginData(r).Next, expires: now.Add(10 * time.Minute)}
	o.mu.Unlock()
	// The state is bound to this browser by a cookie, so a callback
	// carried into another browser is refused.
	http.SetCookie(w, &http.Cookie{Name: stateCookie, Value: state, Path: "/auth/", HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode, MaxAge: 600})
	http.Redirect(w, r, o.oauth.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

func (a *Auth) oidcCallback(w http.ResponseWriter, r *http.Request) {
	o := a.oidc
	fail := func(status int, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		a.log.Warn("console: OIDC sign-in refused", "err", msg, "from", r.RemoteAddr)
		d := a.loginData(r)
		d.Error = "Sign-in refused: " + msg
		a.Login(w, r, status, d)
	}
	if e := r.FormValue("error"); e != "" {
		fail(http.StatusUnauthorized, "the provider said %s: %s", e, r.FormValue("error_description"))
		return
	}
	state := r.FormValue("state")
	c, err := r.Cookie(stateCookie)
	if err != nil || state == "" || c.Value != state {
		fail(http.StatusBadRequest, "the sign-in was not started in this browser (state mismatch)")
		return
	}
	o.mu.Lock()
	p, ok := o.pending[state]
	delete(o.pending, state)
	o.mu.Unlock()
	if !ok || time.Now().After(p.expires) {
		fail(http.StatusBadRequest, "the sign-in expired; try again")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	tok, err := o.oauth.Exchange(ctx, r.FormValue("code"), oauth2.VerifierOption(p.verifier))
	if err != nil {
		fail(http.StatusUnauthorized, "code exchange: %v", err)
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		fail(http.StatusUnauthorized, "no id_token in the provider's answer")
		return
	}
	idt, err := o.verifier.Verify(ctx, raw)
	if err != nil {
		fail(http.StatusUnauthorized, "id_token: %v", err)
		return
	}
	if idt.Nonce != p.nonce {
		fail(http.StatusUnauthorized, "id_token: wrong nonce")
		return
	}
	u, unverified, err := o.user(idt)
	if err != nil {
		fail(http.StatusUnauthorized, "%v", err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: stateCookie, Value: "", Path: "/auth/", HttpOnly: true, Secure: true, MaxAge: -1})
	a.start(w, u, raw)
	a.log.Info("console: signed in", "user", u.Name, "role", u.Role, "via", u.Via)
	if u.Role == Viewer && unverified != "" && slices.ContainsFunc(o.cfg.Operators, func(op string) bool { return strings.EqualFold(op, unverified) }) {
		a.log.Warn("console: CONSOLE_OIDC_OPERATORS names this e-mail, but the provider's token does not say email_verified: true, so it signed in as a viewer; name one of its groups instead", "user", u.Name, "email", unverified)
	}
	http.Redirect(w, r, p.next, http.StatusSeeOther)
}

// user is the token's person; operator when CONSOLE_OIDC_OPERATORS names
// the e-mail or one of the groups. unverified is an address the token
// carries without vouching for it: it names nobody, not even the user in
// the audit trail.
func (o *oidcSource) user(idt *oidc.IDToken) (u User, unverified string, err error) {
	var cl struct {
		Email         string   `json:"email"`
		EmailVerified *bool    `json:"email_verified"`
		Name          string   `json:"name"`
		Preferred     string   `json:"preferred_username"`
		Groups        []string `json:"groups"`
	}
	if err := idt.Claims(&cl); err != nil {
		return User{}, "", fmt.Errorf("id_token claims: %w", err)
	}
	u = User{Role: Viewer, Via: "oidc", Groups: cl.Groups}
	// Only an address the provider vouches for names an operator: without
	// email_verified (Entra ID's tokens, where users may set their own
	// address: "nOAuth") it may be anyone's. Groups still do.
	if cl.EmailVerified != nil && *cl.EmailVerified {
		u.Email = cl.Email
	} else {
		unverified = cl.Email
	}
	// The name is what the audit trail records: without a vouched-for
	// address it carries the subject, which the user cannot choose.
	u.Name = u.Email
	if u.Name == "" && idt.Subject != "" {
		u.Name = idt.Subject
		if shown := cmp.Or(cl.Preferred, cl.Name); shown != "" {
			u.Name = shown + " (sub " + idt.Subject + ")"
		}
	}
	for _, op := range o.cfg.Operators {
		if u.Email != "" && strings.EqualFold(op, u.Email) || slices.ContainsFunc(cl.Groups, func(g string) bool { return strings.EqualFold(g, op) }) {
			u.Role = Operator
		}
	}
	if u.Name == "" {
		return User{}, "", errors.New("the id_token names nobody")
	}
	return u, unverified, nil
}

func (o *oidcSource) logoutURL(idToken string) string {
	if o.endURL == "" {
		return ""
	}
	u, err := url.Parse(o.endURL)
	if err != nil {
		return ""
	}
	q := u.Query()
	q.Set("id_token_hint", idToken)
	q.Set("post_logout_redirect_uri", o.returnURL)
	q.Set("client_id", o.cfg.ClientID)
	u.RawQuery = q.Encode()
	return u.String()
}
