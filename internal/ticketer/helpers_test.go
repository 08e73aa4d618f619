package ticketer_test

import (
	"testing"

	"github.com/cowjacket/formjira/internal/jirasandbox"
	"github.com/cowjacket/formjira/internal/ticketer/ticketertest"
)

// harness is the shared one; the service's tests add nothing to it.
type harness struct{ *ticketertest.Harness }

func newHarness(t *testing.T, opts jirasandbox.Options) *harness {
	return &harness{ticketertest.New(t, opts)}
}
