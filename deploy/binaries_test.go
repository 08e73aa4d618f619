package deploy_test

// The one place the deploy tests import the binaries' packages: what each
// binary reads from the environment, its HTTP_ADDR default, and the form
// table's schema. When internal/ is rearranged, only this file changes.

import (
	"github.com/cowjacket/formjira/internal/capture"
	"github.com/cowjacket/formjira/internal/config"
	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/ticketer"
)

// binaryVar is one environment variable a binary reads: Secret ones must
// come from files (NAME_FILE), File ones name a file the deploy provides.
type binaryVar struct {
	Name, Default string
	Secret, File  bool
}

// binaryVars is, per binary (capture, ticketer), every variable it reads,
// with its default.
func binaryVars() map[string][]binaryVar {
	conv := func(vars []config.Var) []binaryVar {
		var out []binaryVar
		for _, v := range vars {
			out = append(out, binaryVar{Name: v.Name, Default: v.Default, Secret: v.Secret, File: v.File})
			if v.Secret {
				out = append(out, binaryVar{Name: v.Name + "_FILE", File: true}) // config.Reader's file form
			}
		}
		return out
	}
	return map[string][]binaryVar{
		"capture":  conv(capture.Vars),
		"ticketer": conv(ticketer.Vars),
	}
}

// formSchemaSQL is the form table exactly as the product (tests, demo)
// creates it.
func formSchemaSQL() string { return form.SchemaSQL }
