package jirasandbox

import (
	"embed"
	"fmt"
	"io/fs"

	"github.com/cowjacket/formjira/internal/jirasandbox/catalog"
)

// The fixtures are the contract shared with the ticketer's mapping (copies
// of jira/ in the shared folder); embedding them keeps the sandbox runnable
// anywhere. Other packages' tests read them from this folder too.
//
//go:embed fixtures/*.json
var fixtureFS embed.FS

func loadCatalog() (*catalog.Catalog, error) {
	sub, err := fs.Sub(fixtureFS, "fixtures")
	if err != nil {
		return nil, fmt.Errorf("fixtures: %w", err)
	}
	return catalog.Load(sub)
}
