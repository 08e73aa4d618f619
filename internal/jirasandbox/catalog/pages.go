package catalog

import (
	"encoding/json"
	"fmt"

	"github.com/cowjacket/formjira/internal/jirasandbox/wire"
)

// List keys of createmeta pages. Jira Cloud's getCreateIssueMetaIssueTypeId
// answers {"fields":[…],"maxResults","startAt","total"} and its schema also
// declares "results"; Jira Data Center 9 answers "values" with "isLast"
// (research notes §7, https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/#api-rest-api-3-issue-createmeta-projectidorkey-issuetypes-issuetypeid-get).
// The issue-type list is "issueTypes" on Cloud and "values" on DC.
const (
	ListValues     = "values"
	ListFields     = "fields"
	ListResults    = "results"
	ListIssueTypes = "issueTypes"
)

// MaxCreateMetaResults is createmeta's documented maximum page size; a
// larger maxResults is refused with 400.
const MaxCreateMetaResults = 200

// Page is one createmeta page request.
type Page struct {
	StartAt, MaxResults int
	// Key is the list's key (ListValues, ListFields, ListResults for
	// fields; ListIssueTypes or ListValues for issue types).
	Key string
	// Empty serves the page an anonymous caller gets: nothing in it.
	Empty bool
}

// render pages items. isLast is sent only in the shapes that carry it
// (DC's "values", and the issue-type fixture's own "issueTypes").
func render(items []any, p Page) ([]byte, error) {
	if p.Empty {
		items = nil
	}
	start := min(max(p.StartAt, 0), len(items))
	end := min(start+p.MaxResults, len(items))
	out := map[string]any{
		"maxResults": p.MaxResults,
		"startAt":    start,
		"total":      len(items),
		p.Key:        append([]any{}, items[start:end]...),
	}
	if p.Key == ListValues || p.Key == ListIssueTypes {
		out["isLast"] = end == len(items)
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("render createmeta page: %w", err)
	}
	return b, nil
}

// CreateMeta renders a page of createmeta fields for the issue type.
func (c *Catalog) CreateMeta(p Page) ([]byte, error) {
	if p.Key == "" {
		p.Key = ListValues
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return render(wire.AsSlice(c.createMeta["values"]), p)
}

// IssueTypes renders a page of the project's issue types.
func (c *Catalog) IssueTypes(p Page) ([]byte, error) {
	if p.Key == "" {
		p.Key = ListIssueTypes
	}
	return render(c.issueTypes, p)
}

// RequestTypeFields is the request type's field list, as served.
func (c *Catalog) RequestTypeFields() ([]byte, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	b, err := json.Marshal(c.requestType)
	if err != nil {
		return nil, fmt.Errorf("render request type fields: %w", err)
	}
	return b, nil
}

// Fields is the project's field list (GET /rest/api/N/field), as served.
func (c *Catalog) Fields() []byte { return c.fieldsRaw }
