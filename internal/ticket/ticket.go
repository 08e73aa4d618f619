// Package ticket is the vocabulary mapping and jira share: the ticket to
// create (Request), where it goes (Target) and what Jira says the target's
// fields accept (Meta). mapping builds Requests from form events against a
// Meta; jira parses Jira's JSON into a Meta and sends Requests. Neither
// imports the other.
package ticket

import (
	"errors"
	"strings"
)

// Target is where tickets are created: a project and issue type through the
// platform API, or a service desk and request type through the JSM request
// API (then ServiceDeskID is set).
type Target struct {
	Project, IssueType           string // platform (Project also for JQL in JSM mode)
	ServiceDeskID, RequestTypeID string // jsm
}

// JSM reports whether tickets are raised as JSM customer requests.
func (t Target) JSM() bool { return t.ServiceDeskID != "" }

// HashLabelPrefix starts the label that carries the record hash, so
// ticketer can find a ticket by hash with JQL (labels = "cowjacket-<hash>").
const HashLabelPrefix = "cowjacket-"

// HashLabel is the label carrying a record hash.
func HashLabel(hash string) string { return HashLabelPrefix + strings.ToLower(hash) }

// Request is one ticket to create. Platform mode fills Fields (the "fields"
// object of POST /rest/api/N/issue, project/issuetype/labels included); JSM
// mode fills the JSM fields (request field values, which carry the hash label
// in "labels" too when the request type allows it).
type Request struct {
	Hash      string
	HashLabel string

	Fields map[string]any // platform

	ServiceDeskID      string         // jsm
	RequestTypeID      string         // jsm
	RequestFieldValues map[string]any // jsm
	RaiseOnBehalfOf    string         // jsm: the requester's accountId, once resolved (SetRequester)

	// Requester is the person the request is for, when the mapping names
	// one: Jira wants their account (JSM: raiseOnBehalfOf; platform: the
	// reporter, when ReporterIsRequester), which ticketer resolves from the
	// e-mail (finding or creating the JSM customer) before creating.
	Requester           *Person
	ReporterIsRequester bool // platform: reporter = the requester's account
	// AsBotWithoutAccount: when no account can be had for the requester
	// (the bot may not create customers), create the ticket as the bot
	// instead of dead-lettering it; the requester stays named in the
	// mapped fields.
	AsBotWithoutAccount bool

	// Labels is every label the ticket must carry (the mapping's fixed
	// labels, then HashLabel). Platform mode also has them in
	// Fields["labels"]; JSM mode has them in RequestFieldValues["labels"]
	// only when the request type offers a labels field — otherwise
	// LabelsPending is true and ticketer adds them after creating with
	// PUT /rest/api/N/issue/{key} {"update":{"labels":[{"add":"…"}]}},
	// for operators' searches. A create with LabelsPending carries the
	// hash verbatim in its description instead ("Record hash: <hash>",
	// appended when the description template does not show {{.Hash}}), and
	// reconciliation searches for it there (text ~), since the label edit
	// may never have happened.
	Labels        []string
	LabelsPending bool
}

// ErrNoAccount: the requester has no Jira account the bot may see, and the
// bot may not create one (the wrapping error names the missing permission).
var ErrNoAccount = errors.New("no Jira account for the requester")

// Person is a requester as the form names them.
type Person struct {
	Email string // as typed in the form (trimmed)
	Name  string // display name for a customer created from it
}

// SetRequester puts the requester's accountId where the target wants it.
func (r *Request) SetRequester(accountID string) {
	if r.ServiceDeskID != "" {
		r.RaiseOnBehalfOf = accountID
		return
	}
	if r.ReporterIsRequester && r.Fields != nil {
		r.Fields["reporter"] = map[string]any{"id": accountID}
	}
}

// RequestTypeCustom is the schema.custom of JSM's Customer Request Type
// field (customfield_10010 on Cloud): on the create screen of every JSM
// project; an issue created without it is no customer request.
const RequestTypeCustom = "com.atlassian.servicedesk:vp-origin"

// RequestTypeField is the id of the target's Customer Request Type field
// ("" when it has none: not a service project).
func (m *Meta) RequestTypeField() string {
	if m == nil {
		return ""
	}
	for id, fm := range m.Fields {
		if fm.Custom == RequestTypeCustom {
			return id
		}
	}
	return ""
}

// FieldMeta is what Jira says about one field of the target screen (from
// createmeta, or from a JSM request type's fields).
type FieldMeta struct {
	ID       string   // "customfield_10073", "summary"
	Name     string   // "Department"
	Required bool     //
	Type     string   // schema.type: string, option, array, date, datetime, number, user, project, issuetype
	Items    string   // schema.items for arrays: option, string
	Custom   string   // schema.custom, e.g. ...:select, ...:textarea, ...:multicheckboxes
	Allowed  []Option // allowed values of option fields (disabled options left out)
	// HasDefault: Jira fills the field itself when it is not sent, so a
	// required field with a default need not be mapped (e.g. reporter).
	HasDefault bool
}

// Option is one allowed value of a select/radio/checkbox field.
type Option struct {
	ID    string
	Value string
}

// Meta is the field set of the target: project + issue type (platform) or
// service desk + request type (JSM). ticketer fetches it from Jira (fresh
// after every failure class that could mean it changed).
type Meta struct {
	Fields map[string]FieldMeta // by field id
	// CanRaiseOnBehalfOf is JSM's canRaiseOnBehalfOf for the bot: it may
	// raise requests for customers (false in platform mode).
	CanRaiseOnBehalfOf bool
}

// Field is the field's metadata, tolerating a nil Meta.
func (m *Meta) Field(id string) (FieldMeta, bool) {
	if m == nil {
		return FieldMeta{}, false
	}
	fm, ok := m.Fields[id]
	return fm, ok
}

// Payload is the JSON body that creates the ticket: the body of
// POST /rest/api/N/issue (one element of "issueUpdates" for bulk), or of
// POST /rest/servicedeskapi/request (sent without isAdfRequest: its text is
// wiki-escaped).
func (r *Request) Payload() map[string]any {
	if r.ServiceDeskID != "" {
		p := map[string]any{
			"serviceDeskId":      r.ServiceDeskID,
			"requestTypeId":      r.RequestTypeID,
			"requestFieldValues": r.RequestFieldValues,
		}
		if r.RaiseOnBehalfOf != "" {
			p["raiseOnBehalfOf"] = r.RaiseOnBehalfOf
		}
		return p
	}
	return map[string]any{"fields": r.Fields}
}
