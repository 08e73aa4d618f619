package jirasandbox

import (
	"embed"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// The fixtures are the contract shared with the ticketer's mapping; embedding
// them keeps the sandbox runnable without /work/shared.
//
//go:embed fixtures/*.json
var fixtureFS embed.FS

// fixtureHost is the site the fixtures were captured from; "self" links are
// rewritten to the sandbox's own address when served.
const fixtureHost = "https://cowjacket.atlassian.net"

// The JSM identifiers of the fixture project (README of the fixtures).
const (
	serviceDeskID = "4"
	requestTypeID = "41"
)

type fieldKind int

const (
	kindAny fieldKind = iota
	kindSummary
	kindText     // single-line text: 255 characters
	kindTextArea // description and multi-line text: ADF in v3
	kindOption   // select list or radio buttons
	kindOptions  // checkboxes or multi-select
	kindDate
	kindDateTime
	kindLabels
	kindUser
	kindProject
	kindIssueType
)

type option struct {
	ID    string
	Value string
}

// fieldMeta is the part of a createmeta (or request-type) field that
// validation needs.
type fieldMeta struct {
	ID         string
	Name       string
	Required   bool
	HasDefault bool
	Kind       fieldKind
	Options    []option
}

func (f *fieldMeta) optionByID(id string) bool {
	for _, o := range f.Options {
		if o.ID == id {
			return true
		}
	}
	return false
}

func (f *fieldMeta) optionByValue(v string) bool {
	for _, o := range f.Options {
		if o.Value == v {
			return true
		}
	}
	return false
}

type jiraSchema struct {
	Type   string `json:"type"`
	Items  string `json:"items"`
	System string `json:"system"`
	Custom string `json:"custom"`
}

func (s jiraSchema) kind() fieldKind {
	switch s.System {
	case "summary":
		return kindSummary
	case "description":
		return kindTextArea
	case "labels":
		return kindLabels
	case "project":
		return kindProject
	case "issuetype":
		return kindIssueType
	}
	switch {
	case s.Type == "user":
		return kindUser
	case s.Type == "date":
		return kindDate
	case s.Type == "datetime":
		return kindDateTime
	case s.Type == "option":
		return kindOption
	case s.Type == "array" && s.Items == "option":
		return kindOptions
	case strings.HasSuffix(s.Custom, ":textarea"):
		return kindTextArea
	case s.Type == "string":
		return kindText
	}
	return kindAny
}

// catalog holds the fixtures: the raw JSON trees that are served (so that
// AddOption shows up in them) and the typed view used for validation.
type catalog struct {
	mu sync.RWMutex

	issueTypesRaw []byte
	fieldsRaw     []byte
	createMeta    map[string]any // createmeta-CP-10003.json
	requestType   map[string]any // servicedesk-4-requesttype-41-fields.json

	projectID, projectKey, projectName string
	issueTypeID, issueTypeName         string

	meta       []*fieldMeta // createmeta order
	metaByID   map[string]*fieldMeta
	jsm        []*fieldMeta // request-type order
	jsmByID    map[string]*fieldMeta
	nextOption int
}

func loadCatalog() (*catalog, error) {
	read := func(name string) ([]byte, error) {
		b, err := fixtureFS.ReadFile("fixtures/" + name)
		if err != nil {
			return nil, fmt.Errorf("read fixture %s: %w", name, err)
		}
		return b, nil
	}
	c := &catalog{metaByID: map[string]*fieldMeta{}, jsmByID: map[string]*fieldMeta{}}
	var err error
	if c.issueTypesRaw, err = read("createmeta-CP-issuetypes.json"); err != nil {
		return nil, err
	}
	if c.fieldsRaw, err = read("fields.json"); err != nil {
		return nil, err
	}
	metaRaw, err := read("createmeta-CP-10003.json")
	if err != nil {
		return nil, err
	}
	jsmRaw, err := read("servicedesk-4-requesttype-41-fields.json")
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(metaRaw, &c.createMeta); err != nil {
		return nil, fmt.Errorf("decode createmeta fixture: %w", err)
	}
	if err := json.Unmarshal(jsmRaw, &c.requestType); err != nil {
		return nil, fmt.Errorf("decode request type fixture: %w", err)
	}

	var types struct {
		IssueTypes []struct{ ID, Name string } `json:"issueTypes"`
	}
	if err := json.Unmarshal(c.issueTypesRaw, &types); err != nil || len(types.IssueTypes) == 0 {
		return nil, fmt.Errorf("decode issue types fixture: %v", err)
	}
	c.issueTypeID, c.issueTypeName = types.IssueTypes[0].ID, types.IssueTypes[0].Name

	var meta struct {
		Values []struct {
			FieldID         string     `json:"fieldId"`
			Name            string     `json:"name"`
			Required        bool       `json:"required"`
			HasDefaultValue bool       `json:"hasDefaultValue"`
			Schema          jiraSchema `json:"schema"`
			AllowedValues   []struct {
				ID    string `json:"id"`
				Value string `json:"value"`
				Key   string `json:"key"`
				Name  string `json:"name"`
			} `json:"allowedValues"`
		} `json:"values"`
	}
	if err := json.Unmarshal(metaRaw, &meta); err != nil {
		return nil, fmt.Errorf("decode createmeta fixture: %w", err)
	}
	for _, v := range meta.Values {
		f := &fieldMeta{ID: v.FieldID, Name: v.Name, Required: v.Required, HasDefault: v.HasDefaultValue, Kind: v.Schema.kind()}
		for _, a := range v.AllowedValues {
			f.Options = append(f.Options, option{ID: a.ID, Value: a.Value})
			c.bumpOptionID(a.ID)
		}
		if f.Kind == kindProject && len(v.AllowedValues) > 0 {
			c.projectID, c.projectKey, c.projectName = v.AllowedValues[0].ID, v.AllowedValues[0].Key, v.AllowedValues[0].Name
		}
		c.meta = append(c.meta, f)
		c.metaByID[f.ID] = f
	}
	if c.projectKey == "" {
		return nil, fmt.Errorf("createmeta fixture has no project")
	}

	var rt struct {
		Fields []struct {
			FieldID     string     `json:"fieldId"`
			Name        string     `json:"name"`
			Required    bool       `json:"required"`
			JiraSchema  jiraSchema `json:"jiraSchema"`
			ValidValues []struct {
				Value string `json:"value"`
				Label string `json:"label"`
			} `json:"validValues"`
		} `json:"requestTypeFields"`
	}
	if err := json.Unmarshal(jsmRaw, &rt); err != nil {
		return nil, fmt.Errorf("decode request type fixture: %w", err)
	}
	for _, v := range rt.Fields {
		f := &fieldMeta{ID: v.FieldID, Name: v.Name, Required: v.Required, Kind: v.JiraSchema.kind()}
		for _, a := range v.ValidValues {
			// In JSM validValues, "value" is the option id and "label" its text.
			f.Options = append(f.Options, option{ID: a.Value, Value: a.Label})
			c.bumpOptionID(a.Value)
		}
		c.jsm = append(c.jsm, f)
		c.jsmByID[f.ID] = f
	}
	return c, nil
}

func (c *catalog) bumpOptionID(id string) {
	if n, err := strconv.Atoi(id); err == nil && n >= c.nextOption {
		c.nextOption = n + 1
	}
}

// addOption adds value to the option field in both createmeta and the
// request type, as an admin would in Jira's field configuration.
func (c *catalog) addOption(fieldID, value string) error {
	if value == "" {
		return fmt.Errorf("add option to %s: empty value", fieldID)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.metaByID[fieldID]
	if !ok || (f.Kind != kindOption && f.Kind != kindOptions) {
		return fmt.Errorf("add option to %s: not a select, radio or checkbox field", fieldID)
	}
	if f.optionByValue(value) {
		return nil
	}
	id := strconv.Itoa(c.nextOption)
	c.nextOption++
	f.Options = append(f.Options, option{ID: id, Value: value})
	for _, v := range asSlice(c.createMeta["values"]) {
		m, _ := v.(map[string]any)
		if m["fieldId"] == fieldID {
			m["allowedValues"] = append(asSlice(m["allowedValues"]), map[string]any{
				"self": fixtureHost + "/rest/api/2/customFieldOption/" + id, "value": value, "id": id, "disabled": false,
			})
		}
	}
	if jf, ok := c.jsmByID[fieldID]; ok {
		jf.Options = append(jf.Options, option{ID: id, Value: value})
		for _, v := range asSlice(c.requestType["requestTypeFields"]) {
			m, _ := v.(map[string]any)
			if m["fieldId"] == fieldID {
				m["validValues"] = append(asSlice(m["validValues"]), map[string]any{"value": id, "label": value, "children": []any{}})
			}
		}
	}
	return nil
}

// createMetaPage renders the createmeta field page like Jira's paginated answer.
func (c *catalog) createMetaPage(startAt, maxResults int) ([]byte, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	values := asSlice(c.createMeta["values"])
	startAt = min(max(startAt, 0), len(values))
	end := min(startAt+maxResults, len(values))
	return json.Marshal(map[string]any{
		"maxResults": maxResults,
		"startAt":    startAt,
		"total":      len(values),
		"isLast":     end == len(values),
		"values":     values[startAt:end],
	})
}

func (c *catalog) requestTypeJSON() ([]byte, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return json.Marshal(c.requestType)
}

func (c *catalog) projectMatches(v any) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	if k, ok := m["key"].(string); ok {
		return k == c.projectKey
	}
	return idString(m["id"]) == c.projectID
}

func (c *catalog) issueTypeMatches(v any) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	if id := idString(m["id"]); id != "" {
		return id == c.issueTypeID
	}
	n, _ := m["name"].(string)
	return n == c.issueTypeName
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// idString accepts ids sent as JSON strings or numbers, as Jira does.
func idString(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	}
	return ""
}
