package mapping

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"
	_ "time/tzdata" // timezone: names resolve without the system's zone files
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/cowjacket/formjira/internal/ticket"
)

// fieldType is how a column's value becomes a Jira field value.
type fieldType string

const (
	typeText        fieldType = "text"        // single-line text, 255 characters
	typeTextarea    fieldType = "textarea"    // multi-line text, 32,767 characters
	typeNumber      fieldType = "number"      // JSON number
	typeSelect      fieldType = "select"      // one allowed option
	typeRadio       fieldType = "radio"       // one allowed option
	typeCheckboxes  fieldType = "checkboxes"  // allowed options, split at separator
	typeMultiselect fieldType = "multiselect" // allowed options, split at separator
	typeDate        fieldType = "date"        // YYYY-MM-DD
	typeDatetime    fieldType = "datetime"    // 2006-01-02T15:04:05.000-0700
	typeLabels      fieldType = "labels"      // labels, split at separator
	typeUser        fieldType = "user"        // {"accountId": …}
)

var fieldTypes = []fieldType{typeText, typeTextarea, typeNumber, typeSelect, typeRadio,
	typeCheckboxes, typeMultiselect, typeDate, typeDatetime, typeLabels, typeUser}

func (t fieldType) multi() bool {
	return t == typeCheckboxes || t == typeMultiselect || t == typeLabels
}

func (t fieldType) option() bool {
	return t == typeSelect || t == typeRadio || t == typeCheckboxes || t == typeMultiselect
}

// Jira's limits, checked before sending so that a row Jira would refuse is
// dead-lettered without burning an issue key.
const (
	maxText     = 255
	maxTextarea = 32767
	maxSummary  = 255
)

// Mapping is a parsed, validated mapping file. It is immutable and safe for
// concurrent use.
type Mapping struct {
	mode          Mode
	apiVersion    int
	project       string
	issueType     string
	serviceDeskID string
	requestTypeID string
	requester     requesterSpec
	reporter      bool   // platform: reporter = the requester's account
	requestType   string // platform: Customer Request Type value ("41" or "portal/key")
	asBot         bool   // unknown_requester: raise_as_bot
	labels        []string
	fixed         map[string]any
	fixedOrder    []string
	summary       *template.Template
	description   *template.Template // nil: no description
	fields        []fieldSpec
}

// fieldSpec is one entry of "fields:".
type fieldSpec struct {
	Column    string
	Field     string
	Type      fieldType
	Required  bool
	Separator string
	Escape    bool // v2/JSM: backslash-escape wiki markup (text only; textarea always)
	// Zone (date and datetime, nil = UTC): the date of an instant is taken
	// there, and a wall clock without an offset is read there.
	Zone *time.Location
}

// Mode is how tickets are created.
func (m *Mapping) Mode() Mode { return m.mode }

// APIVersion is the platform REST API version, 2 or 3. In JSM mode it is the
// version of the platform calls around the request (label edit, JQL).
func (m *Mapping) APIVersion() int { return m.apiVersion }

// Project is the project key.
func (m *Mapping) Project() string { return m.project }

// IssueType is the issue type id (platform mode).
func (m *Mapping) IssueType() string { return m.issueType }

// Target is where the mapping creates tickets.
func (m *Mapping) Target() ticket.Target {
	t := ticket.Target{Project: m.project, IssueType: m.issueType}
	if m.mode == ModeJSM {
		t.IssueType, t.ServiceDeskID, t.RequestTypeID = "", m.serviceDeskID, m.requestTypeID
	}
	return t
}

// HasRequester reports whether tickets are created for a requester
// account (JSM raiseOnBehalfOf, or a platform reporter).
func (m *Mapping) HasRequester() bool { return m.requester.email != "" }

// ServiceDesk is the JSM service desk and request type ids ("" in platform
// mode).
func (m *Mapping) ServiceDesk() (deskID, requestTypeID string) {
	return m.serviceDeskID, m.requestTypeID
}

// adf: textareas and description are Atlassian documents (platform v3).
// JSM requests are sent without isAdfRequest, so they take wiki text.
func (m *Mapping) adf() bool { return m.mode == ModePlatform && m.apiVersion == 3 }

// Load reads and parses a mapping file; errors start with the path.
func Load(path string) (*Mapping, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("mapping: %w", err)
	}
	m, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// rawMapping is the file as written; Parse validates it into a Mapping.
type rawMapping struct {
	Mode            string         `yaml:"mode"`
	APIVersion      scalar         `yaml:"api_version"`
	Project         scalar         `yaml:"project"`
	IssueType       scalar         `yaml:"issue_type"`
	ServiceDeskID   scalar         `yaml:"service_desk_id"`
	RequestTypeID   scalar         `yaml:"request_type_id"`
	RaiseOnBehalfOf string         `yaml:"raise_on_behalf_of"`
	Requester       *rawRequester  `yaml:"requester"`
	Reporter        string         `yaml:"reporter"`
	RequestType     scalar         `yaml:"request_type"`
	UnknownReq      string         `yaml:"unknown_requester"`
	Labels          []string       `yaml:"labels"`
	Fixed           map[string]any `yaml:"fixed"`
	Summary         string         `yaml:"summary"`
	Description     string         `yaml:"description"`
	Fields          []rawField     `yaml:"fields"`
}

// rawRequester names the columns that identify the person a request is for.
type rawRequester struct {
	Email string `yaml:"email"`
	Name  string `yaml:"name"`
}

// requesterSpec is the requester's columns ("" email: no requester).
type requesterSpec struct{ email, name string }

// requestTypeValue is what Jira's Customer Request Type field takes on
// create: the request type id, or "<portal key>/<request type key>".
var requestTypeValue = regexp.MustCompile(`^([0-9]+|[a-z0-9-]+/[a-z0-9-]+)$`)

// scalar accepts a quoted or unquoted YAML scalar as text, so that
// `issue_type: 10003` and `issue_type: "10003"` mean the same.
type scalar string

func (s *scalar) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a single value", n.Line)
	}
	*s = scalar(strings.TrimSpace(n.Value))
	return nil
}

type rawField struct {
	Column    string
	Field     scalar
	Type      string
	Required  bool
	Separator *string
	Escape    *bool
	Timezone  *string
	line      int
}

var rawFieldKeys = []string{"column", "field", "type", "required", "separator", "escape", "timezone"}

// UnmarshalYAML keeps the entry's line for error messages and refuses
// unknown keys (a misspelt "requird: true" must not be silently ignored).
func (f *rawField) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a fields entry must be a mapping (column, field, type, …)", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i].Value; !slices.Contains(rawFieldKeys, k) {
			return fmt.Errorf("line %d: unknown key %q in fields entry (want %s)", n.Content[i].Line, k, strings.Join(rawFieldKeys, ", "))
		}
	}
	var plain struct {
		Column    string  `yaml:"column"`
		Field     scalar  `yaml:"field"`
		Type      string  `yaml:"type"`
		Required  bool    `yaml:"required"`
		Separator *string `yaml:"separator"`
		Escape    *bool   `yaml:"escape"`
		Timezone  *string `yaml:"timezone"`
	}
	if err := n.Decode(&plain); err != nil {
		return err
	}
	*f = rawField{plain.Column, plain.Field, plain.Type, plain.Required, plain.Separator, plain.Escape, plain.Timezone, n.Line}
	return nil
}

var (
	fieldIDPattern = regexp.MustCompile(`^(customfield_[0-9]+|[a-z][A-Za-z0-9]*)$`)
	numericID      = regexp.MustCompile(`^[0-9]+$`)
	projectKey     = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
)

// zone reads a field's timezone: an IANA name (the zone database is built
// in, so a container without one works), for date and datetime only.
func (p *parser) zone(i int, f rawField) *time.Location {
	if t := fieldType(f.Type); t != typeDate && t != typeDatetime {
		p.fieldErrorf(i, f, "timezone: only for date and datetime")
		return nil
	}
	name := *f.Timezone
	if name == "" || name == "Local" {
		p.fieldErrorf(i, f, "timezone: %q is not a time zone (want an IANA name such as Europe/Berlin, or UTC)", name)
		return nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		p.fieldErrorf(i, f, "timezone: %q is not an IANA time zone (e.g. Europe/Berlin, America/New_York, UTC)", name)
		return nil
	}
	return loc
}

// Parse parses and validates a mapping. Every problem is reported, on one
// line, each naming the key and its line.
func Parse(data []byte) (*Mapping, error) {
	var raw rawMapping
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("mapping is empty")
		}
		return nil, errors.New(yamlError(err))
	}
	var root yaml.Node
	_ = yaml.Unmarshal(data, &root) // decoded above, so it parses
	p := &parser{lines: keyLines(&root)}
	m := p.build(&raw)
	if len(p.errs) > 0 {
		return nil, errors.New(strings.Join(p.errs, "; "))
	}
	return m, nil
}

type parser struct {
	lines map[string]int
	errs  []string
}

func (p *parser) errorf(key string, format string, args ...any) {
	msg := key + ": " + fmt.Sprintf(format, args...)
	if l := p.lines[key]; l > 0 {
		msg = fmt.Sprintf("line %d: %s", l, msg)
	}
	p.errs = append(p.errs, msg)
}

func (p *parser) fieldErrorf(i int, f rawField, format string, args ...any) {
	p.errs = append(p.errs, fmt.Sprintf("line %d: fields[%d] (column %q): %s", f.line, i, f.Column, fmt.Sprintf(format, args...)))
}

func (p *parser) build(raw *rawMapping) *Mapping {
	m := &Mapping{mode: Mode(raw.Mode)}
	switch m.mode {
	case "":
		m.mode = ModePlatform
	case ModePlatform, ModeJSM:
	default:
		p.errorf("mode", "%q is not a mode (want platform or jsm)", raw.Mode)
	}

	switch raw.APIVersion {
	case "2", "3":
		m.apiVersion, _ = strconv.Atoi(string(raw.APIVersion))
	case "":
		if m.mode == ModePlatform {
			p.errorf("api_version", "missing (want 2 or 3: v3 sends textareas and description as ADF, v2 as escaped wiki text)")
		}
		m.apiVersion = 2 // JSM: only the label edit and JQL use it
	default:
		p.errorf("api_version", "%q is not supported (want 2 or 3)", raw.APIVersion)
	}

	m.project = string(raw.Project)
	if !projectKey.MatchString(m.project) {
		p.errorf("project", "%q is not a project key (want e.g. CP)", m.project)
	}

	m.issueType = string(raw.IssueType)
	m.serviceDeskID, m.requestTypeID = string(raw.ServiceDeskID), string(raw.RequestTypeID)
	p.requester(m, raw)
	switch m.mode {
	case ModePlatform:
		if !numericID.MatchString(m.issueType) {
			p.errorf("issue_type", "%q is not an issue type id (want digits, e.g. \"10003\"; GET /rest/api/2/issue/createmeta/%s/issuetypes lists them)", m.issueType, m.project)
		}
		for key, v := range map[string]string{"request_type_id": m.requestTypeID, "raise_on_behalf_of": raw.RaiseOnBehalfOf} {
			if v != "" {
				p.errorf(key, "only used in mode jsm (platform mode: request_type, requester and reporter)")
			}
		}
		if m.requestType = string(raw.RequestType); m.requestType != "" && !requestTypeValue.MatchString(m.requestType) {
			p.errorf("request_type", "%q is neither a request type id (digits, e.g. \"41\") nor <portal key>/<request type key>", m.requestType)
		}
		switch raw.Reporter {
		case "":
		case "requester":
			m.reporter = true
			if m.requester.email == "" {
				p.errorf("reporter", "requester needs the requester key (its e-mail column)")
			}
		default:
			p.errorf("reporter", "%q: the only value is requester (the reporter is then the requester's account)", raw.Reporter)
		}
		if m.serviceDeskID != "" && !numericID.MatchString(m.serviceDeskID) {
			p.errorf("service_desk_id", "%q is not a service desk id (want digits, e.g. \"4\")", m.serviceDeskID)
		}
		if m.reporter && m.serviceDeskID == "" {
			p.errorf("service_desk_id", "needed with reporter: requester: new requesters become customers of this service desk")
		}
	case ModeJSM:
		if m.issueType != "" && !numericID.MatchString(m.issueType) {
			p.errorf("issue_type", "%q is not an issue type id (want digits)", m.issueType)
		}
		if !numericID.MatchString(m.serviceDeskID) {
			p.errorf("service_desk_id", "%q is not a service desk id (want digits, e.g. \"4\")", m.serviceDeskID)
		}
		if !numericID.MatchString(m.requestTypeID) {
			p.errorf("request_type_id", "%q is not a request type id (want digits, e.g. \"41\")", m.requestTypeID)
		}
		for key, v := range map[string]string{"request_type": string(raw.RequestType), "reporter": raw.Reporter} {
			if v != "" {
				p.errorf(key, "only used in mode platform (JSM sets the request type and raises on behalf of the requester)")
			}
		}
	}

	for i, l := range raw.Labels {
		switch {
		case l == "" || strings.IndexFunc(l, unicode.IsSpace) >= 0:
			p.errorf("labels", "labels[%d] %q: a Jira label is one word without spaces", i, l)
		case len([]rune(l)) > maxText:
			p.errorf("labels", "labels[%d]: longer than %d characters", i, maxText)
		case !slices.Contains(m.labels, l):
			m.labels = append(m.labels, l)
		}
	}

	if strings.TrimSpace(raw.Summary) == "" {
		p.errorf("summary", "missing (a template such as 'Phone request: {{col \"newusername\"}}')")
	} else if t, err := parseTemplate("summary", raw.Summary); err != nil {
		p.errorf("summary", "%s", err)
	} else {
		m.summary = t
	}
	if strings.TrimSpace(raw.Description) != "" {
		if t, err := parseTemplate("description", raw.Description); err != nil {
			p.errorf("description", "%s", err)
		} else {
			m.description = t
		}
	}

	reserved := map[string]string{
		"summary":   "set by the summary key",
		"project":   "set by the project key",
		"issuetype": "set by the issue_type key",
	}
	if m.description != nil {
		reserved["description"] = "set by the description key"
	}
	used := map[string]string{} // field id → where
	for i, f := range raw.Fields {
		spec := fieldSpec{Column: f.Column, Field: string(f.Field), Type: fieldType(f.Type), Required: f.Required}
		switch {
		case f.Column == "":
			p.fieldErrorf(i, f, "column: missing")
		case strings.TrimSpace(f.Column) != f.Column:
			p.fieldErrorf(i, f, "column: leading or trailing spaces")
		}
		switch {
		case spec.Field == "":
			p.fieldErrorf(i, f, "field: missing (a Jira field id such as customfield_10070)")
		case !fieldIDPattern.MatchString(spec.Field):
			p.fieldErrorf(i, f, "field: %q is not a Jira field id (want customfield_NNNNN or a system id such as duedate; names are ambiguous)", spec.Field)
		case reserved[spec.Field] != "":
			p.fieldErrorf(i, f, "field: %s is %s", spec.Field, reserved[spec.Field])
		case used[spec.Field] != "" && spec.Field != "labels":
			p.fieldErrorf(i, f, "field: %s is already mapped by %s", spec.Field, used[spec.Field])
		}
		used[spec.Field] = fmt.Sprintf("fields[%d]", i)
		if !slices.Contains(fieldTypes, spec.Type) {
			p.fieldErrorf(i, f, "type: %q is unknown (want one of %s)", f.Type, joinTypes())
		}
		if spec.Field == "labels" && spec.Type != typeLabels {
			p.fieldErrorf(i, f, "type: the labels field takes type labels")
		}
		if f.Separator != nil {
			if !spec.Type.multi() {
				p.fieldErrorf(i, f, "separator: only for checkboxes, multiselect and labels")
			} else if strings.TrimSpace(*f.Separator) == "" && *f.Separator != " " {
				p.fieldErrorf(i, f, "separator: empty")
			}
			spec.Separator = *f.Separator
		} else if spec.Type.multi() {
			spec.Separator = ","
		}
		// Jira Cloud's single-line text fields use the plain-text renderer
		// unless a field configuration sets the wiki renderer: escaping
		// would show "\+44" for "+44".
		spec.Escape = false
		if f.Escape != nil {
			if spec.Type != typeText {
				p.fieldErrorf(i, f, "escape: only for type text (textareas and description are always made literal)")
			}
			spec.Escape = *f.Escape
		}
		if f.Timezone != nil {
			spec.Zone = p.zone(i, f)
		}
		m.fields = append(m.fields, spec)
	}
	if len(raw.Fields) == 0 {
		p.errorf("fields", "missing: map at least one column to a Jira field")
	}

	m.fixed = map[string]any{}
	for id, v := range raw.Fixed {
		switch {
		case !fieldIDPattern.MatchString(id):
			p.errorf("fixed", "%q is not a Jira field id", id)
		case reserved[id] != "" || id == "labels":
			p.errorf("fixed", "%s is set by its own key, not fixed", id)
		case used[id] != "":
			p.errorf("fixed", "%s is already mapped by %s", id, used[id])
		default:
			m.fixed[id] = v
			m.fixedOrder = append(m.fixedOrder, id)
		}
	}
	slices.Sort(m.fixedOrder)
	return m
}

func joinTypes() string {
	s := make([]string, len(fieldTypes))
	for i, t := range fieldTypes {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}

// keyLines maps each top-level key to its line.
func keyLines(root *yaml.Node) map[string]int {
	lines := map[string]int{}
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return lines
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		lines[n.Content[i].Value] = n.Content[i].Line
	}
	return lines
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

var yamlUnknownKey = regexp.MustCompile(`field (\S+) not found in type mapping\.\w+`)

// yamlError rewords the YAML decoder's errors for an operator: one line, no
// Go type names.
func yamlError(err error) string {
	msg := oneLine(err.Error())
	msg = strings.TrimPrefix(msg, "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors: ")
	msg = yamlUnknownKey.ReplaceAllString(msg, `unknown key "$1" (keys: mode, api_version, project, issue_type, service_desk_id, request_type_id, raise_on_behalf_of, labels, fixed, summary, description, fields)`)
	msg = strings.ReplaceAll(msg, "into mapping.rawMapping", "into the mapping (want key: value lines)")
	return msg
}

// templateFuncs are the functions templates may call; Build rebinds col to
// the event at hand.
var templateFuncs = template.FuncMap{
	"col": func(string) (string, error) { return "", nil },
}

func parseTemplate(name, text string) (*template.Template, error) {
	t, err := template.New(name).Funcs(templateFuncs).Option("missingkey=error").Parse(text)
	if err != nil {
		// text/template prefixes "template: name:line:"; the key already says which.
		msg := strings.TrimPrefix(err.Error(), "template: ")
		return nil, fmt.Errorf("template: %s", oneLine(msg))
	}
	return t, nil
}

// requester reads requester (and its older spelling raise_on_behalf_of, the
// e-mail column alone) and unknown_requester.
func (p *parser) requester(m *Mapping, raw *rawMapping) {
	if raw.Requester != nil {
		m.requester = requesterSpec{strings.TrimSpace(raw.Requester.Email), strings.TrimSpace(raw.Requester.Name)}
		if m.requester.email == "" {
			p.errorf("requester", "email: the column holding the requester's e-mail address is missing")
		}
		if raw.RaiseOnBehalfOf != "" {
			p.errorf("raise_on_behalf_of", "set requester or raise_on_behalf_of, not both (raise_on_behalf_of is the older spelling of requester.email)")
		}
	} else if col := strings.TrimSpace(raw.RaiseOnBehalfOf); col != "" && m.mode == ModeJSM {
		m.requester = requesterSpec{email: col}
	}
	switch raw.UnknownReq {
	case "", "dead_letter":
	case "raise_as_bot":
		m.asBot = true
	default:
		p.errorf("unknown_requester", "%q: want dead_letter (default) or raise_as_bot", raw.UnknownReq)
	}
	if raw.UnknownReq != "" && m.requester.email == "" {
		p.errorf("unknown_requester", "needs the requester key")
	}
}
