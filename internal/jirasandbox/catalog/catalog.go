// Package catalog is the sandbox's view of project CP as its fixtures
// describe it: createmeta, the field list and JSM request type 41. It
// validates issue and request fields the way Jira does, renders createmeta
// in its paged shapes, and lets an admin add select options.
package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"sync"

	"github.com/cowjacket/formjira/internal/jirasandbox/wire"
)

// FixtureHost is the site the fixtures were captured from; links in them
// are rewritten to the sandbox's own address when served (Localize).
const FixtureHost = "https://cowjacket.atlassian.net"

// The JSM identifiers of the fixture project (jira/README.md).
const (
	ServiceDeskID   = "4"
	RequestTypeID   = "41"
	RequestTypeName = "Phone equipment request"
	// PortalKey and RequestTypeKey41 make up the other form the Customer
	// Request Type field takes on create, "<portal key>/<request type
	// key>": the field's internal value (JSM's CustomerRequestType.getValue,
	// https://docs.atlassian.com/jira-servicedesk/4.13.20/com/atlassian/servicedesk/api/request/type/CustomerRequestType.html).
	PortalKey        = "cp"
	RequestTypeKey41 = "phone-equipment"
	// RequestTypeField is the Customer Request Type field,
	// com.atlassian.servicedesk:vp-origin, on every JSM project's create screen.
	RequestTypeField = "customfield_10010"
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
	kindRequestType // com.atlassian.servicedesk:vp-origin
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
	case s.Custom == "com.atlassian.servicedesk:vp-origin":
		return kindRequestType
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

// Catalog holds the fixtures: the raw JSON trees that are served (so that
// AddOption shows up in them) and the typed view used for validation.
type Catalog struct {
	mu sync.RWMutex

	fieldsRaw   []byte
	issueTypes  []any          // createmeta-CP-issuetypes.json "issueTypes"
	createMeta  map[string]any // createmeta-CP-10003.json
	requestType map[string]any // servicedesk-4-requesttype-41-fields.json

	projectID, projectKey, projectName string
	issueTypeID, issueTypeName         string

	meta       []*fieldMeta // createmeta order
	metaByID   map[string]*fieldMeta
	jsm        []*fieldMeta // request-type order
	jsmByID    map[string]*fieldMeta
	nextOption int
}

// Load reads the four fixtures of jira/README.md from the root of fsys.
func Load(fsys fs.FS) (*Catalog, error) {
	read := func(name string) ([]byte, error) {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("read fixture %s: %w", name, err)
		}
		return b, nil
	}
	c := &Catalog{metaByID: map[string]*fieldMeta{}, jsmByID: map[string]*fieldMeta{}}
	var err error
	typesRaw, err := read("createmeta-CP-issuetypes.json")
	if err != nil {
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
		IssueTypes []map[string]any `json:"issueTypes"`
	}
	if err := json.Unmarshal(typesRaw, &types); err != nil || len(types.IssueTypes) == 0 {
		return nil, fmt.Errorf("decode issue types fixture: %v", err)
	}
	for _, it := range types.IssueTypes {
		c.issueTypes = append(c.issueTypes, it)
	}
	c.issueTypeID, _ = types.IssueTypes[0]["id"].(string)
	c.issueTypeName, _ = types.IssueTypes[0]["name"].(string)

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

func (c *Catalog) bumpOptionID(id string) {
	if n, err := strconv.Atoi(id); err == nil && n >= c.nextOption {
		c.nextOption = n + 1
	}
}

// ProjectKey, ProjectID and ProjectName identify the fixture project.
func (c *Catalog) ProjectKey() string  { return c.projectKey }
func (c *Catalog) ProjectID() string   { return c.projectID }
func (c *Catalog) ProjectName() string { return c.projectName }

// IssueTypeID is the project's one issue type (Service Request).
func (c *Catalog) IssueTypeID() string { return c.issueTypeID }

// ProjectOK reports whether p names the project, by key (any case) or id.
func (c *Catalog) ProjectOK(p string) bool {
	return strings.EqualFold(p, c.projectKey) || p == c.projectID
}

// IsTextArea reports whether field id holds rich text (ADF in v3).
func (c *Catalog) IsTextArea(id string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	f, ok := c.metaByID[id]
	return ok && f.Kind == kindTextArea
}

// FieldNames maps createmeta field ids to their names.
func (c *Catalog) FieldNames() map[string]string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	names := make(map[string]string, len(c.meta))
	for _, f := range c.meta {
		names[f.ID] = f.Name
	}
	return names
}

// Field is a field's id and name.
type Field struct{ ID, Name string }

// RequestFields lists the request type's fields in its order.
func (c *Catalog) RequestFields() []Field {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]Field, len(c.jsm))
	for i, f := range c.jsm {
		out[i] = Field{f.ID, f.Name}
	}
	return out
}

// RequestTypeOf resolves a Customer Request Type value given on create:
// the request type's id ("41") or "<portal key>/<request type key>"
// ("cp/phone-equipment"). Atlassian's REST reference leaves the format
// open and both are reported to work (jira/README.md), so both are
// accepted; ok is false for anything else.
func RequestTypeOf(v string) (id string, ok bool) {
	if v == RequestTypeID || v == PortalKey+"/"+RequestTypeKey41 {
		return RequestTypeID, true
	}
	return "", false
}

// AddOption adds value to the option field in both createmeta and the
// request type, as an admin would in Jira's field configuration.
func (c *Catalog) AddOption(fieldID, value string) error {
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
	for _, v := range wire.AsSlice(c.createMeta["values"]) {
		m, _ := v.(map[string]any)
		if m["fieldId"] == fieldID {
			m["allowedValues"] = append(wire.AsSlice(m["allowedValues"]), map[string]any{
				"self": FixtureHost + "/rest/api/2/customFieldOption/" + id, "value": value, "id": id, "disabled": false,
			})
		}
	}
	if jf, ok := c.jsmByID[fieldID]; ok {
		jf.Options = append(jf.Options, option{ID: id, Value: value})
		for _, v := range wire.AsSlice(c.requestType["requestTypeFields"]) {
			m, _ := v.(map[string]any)
			if m["fieldId"] == fieldID {
				m["validValues"] = append(wire.AsSlice(m["validValues"]), map[string]any{"value": id, "label": value, "children": []any{}})
			}
		}
	}
	return nil
}

// Localize points the fixtures' links at base, the sandbox's own address.
func Localize(b []byte, base string) []byte {
	return bytes.ReplaceAll(b, []byte(FixtureHost), []byte(base))
}

func (c *Catalog) projectMatches(v any) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	if k, ok := m["key"].(string); ok {
		return k == c.projectKey
	}
	return wire.IDString(m["id"]) == c.projectID
}

func (c *Catalog) issueTypeMatches(v any) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	if id := wire.IDString(m["id"]); id != "" {
		return id == c.issueTypeID
	}
	n, _ := m["name"].(string)
	return n == c.issueTypeName
}
