package cli

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestUsageErrorsAreOneLine: a mistyped command or a stray argument is one
// line naming it, headed by the program's name once.
func TestUsageErrorsAreOneLine(t *testing.T) {
	p := Program{Name: "ticketer", Doc: "test", Commands: []Command{
		{Name: "", Run: func(_ context.Context, _ Env, args []string) error { return NoArgs("", args) }},
		{Name: "check", Run: func(_ context.Context, _ Env, args []string) error { return NoArgs("check", args) }},
	}}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bogus"}, `ticketer: unknown command "bogus" (see ticketer --help)`},
		{[]string{"--version"}, `ticketer: unexpected arguments "--version" (see --help)`},
		{[]string{"check", "now"}, `ticketer: check: unexpected arguments "now" (see --help)`},
	} {
		var out, errOut strings.Builder
		err := p.Run(context.Background(), tc.args, func(string) string { return "" }, &out, &errOut)
		if err == nil || strings.TrimSpace(errOut.String()) != tc.want {
			t.Errorf("%v: %v, stderr %q; want %q", tc.args, err, errOut.String(), tc.want)
		}
		if tc.args[0] == "bogus" && !errors.Is(err, ErrUsage) {
			t.Errorf("unknown command: %v, want ErrUsage", err)
		}
	}
}
