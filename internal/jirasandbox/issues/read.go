package issues

import (
	"maps"
	"net/http"
	"slices"
	"strconv"

	"github.com/cowjacket/formjira/internal/jirasandbox/accounts"
	"github.com/cowjacket/formjira/internal/jirasandbox/catalog"
	"github.com/cowjacket/formjira/internal/jirasandbox/wire"
)

// maxBulkFetch is bulkfetch's documented limit: "You can request up to 100 issues."
const maxBulkFetch = 100

func writeNoIssue(w http.ResponseWriter) {
	wire.Errors(w, http.StatusNotFound, []string{"Issue does not exist or you do not have permission to see it."}, nil)
}

// render shows an issue as Jira's issue bean, restricted to fields (nil,
// "*all" or "*navigable" = all). Rich-text fields are converted between
// v2's plain text and v3's ADF as Jira would; reporter is a user and the
// Customer Request Type the request-type object go-atlassian's
// ParseRequestTypeCustomField reads.
func (s *Service) render(r *http.Request, is *Issue, fields []string) map[string]any {
	out := issueRef(r, is)
	s.mu.Lock()
	stored := maps.Clone(is.Fields)
	reporter, requestType := is.Reporter, is.RequestTypeID
	s.mu.Unlock()
	stored["created"] = is.Created.Format(wire.JiraTime)
	stored["updated"] = is.Created.Format(wire.JiraTime)
	if a, ok := s.dir.Get(reporter); ok {
		stored["reporter"] = accounts.UserBean(r, a, false)
	} else if reporter != "" {
		stored["reporter"] = map[string]any{"accountId": reporter, "displayName": reporter, "active": true}
	}
	if requestType != "" {
		stored[catalog.RequestTypeField] = requestTypeValue(r, is)
	} else {
		delete(stored, catalog.RequestTypeField)
	}
	v3 := wire.APIVersion(r) == "v3"
	for id, v := range stored {
		if !s.cat.IsTextArea(id) {
			continue
		}
		switch t := v.(type) {
		case string:
			if v3 {
				stored[id] = catalog.TextADF(t)
			}
		case map[string]any:
			if !v3 {
				stored[id] = catalog.ADFText(t)
			}
		}
	}
	if fields == nil {
		out["fields"] = stored
		return out
	}
	sel := map[string]any{}
	for _, f := range fields {
		if f == "*all" || f == "*navigable" {
			sel = stored
			break
		}
		if v, ok := stored[f]; ok {
			sel[f] = v
		}
	}
	out["fields"] = sel
	return out
}

// requestTypeValue is how Jira reads the Customer Request Type back.
func requestTypeValue(r *http.Request, is *Issue) map[string]any {
	base := wire.BaseURL(r)
	return map[string]any{
		"_links": map[string]any{
			"self":     base + "/rest/servicedeskapi/request/" + is.ID,
			"jiraRest": base + "/rest/api/2/issue/" + is.ID,
			"web":      base + "/servicedesk/customer/portal/" + catalog.ServiceDeskID + "/" + is.Key,
			"agent":    base + "/browse/" + is.Key,
		},
		"requestType": map[string]any{
			"id": catalog.RequestTypeID, "name": catalog.RequestTypeName, "description": "Request a new phone line, handset or headset.",
			"helpText": "", "issueTypeId": "10003", "serviceDeskId": catalog.ServiceDeskID, "portalId": catalog.ServiceDeskID, "groupIds": []string{},
			"_links": map[string]any{"self": base + "/rest/servicedeskapi/servicedesk/" + catalog.ServiceDeskID + "/requesttype/" + catalog.RequestTypeID},
		},
		"currentStatus": map[string]any{"status": "Waiting for support", "statusCategory": "NEW", "statusDate": jsmDate(is.Created)},
	}
}

// HandleGet is GET /rest/api/N/issue/{key}: a direct read, not the search
// index, so a new issue is readable at once whatever SearchDelay is. An
// anonymous caller cannot browse the project: 404.
// https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/#api-rest-api-3-issue-issueidorkey-get
func (s *Service) HandleGet(w http.ResponseWriter, r *http.Request) {
	is := s.find(r.PathValue("key"))
	if is == nil || wire.CallerOf(r).Anonymous {
		writeNoIssue(w)
		return
	}
	var fields []string
	if f := r.URL.Query().Get("fields"); f != "" {
		fields = wire.SplitList(f)
	}
	wire.JSON(w, http.StatusOK, s.render(r, is, fields))
}

// HandleBulkFetch is POST /rest/api/N/issue/bulkfetch: up to 100 ids or
// keys, mixed; issues "returned in ascending id order", not request
// order; ids that match nothing are simply absent. A direct read: not
// subject to SearchDelay.
// https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/#api-rest-api-3-issue-bulkfetch-post
func (s *Service) HandleBulkFetch(w http.ResponseWriter, r *http.Request) {
	if s.policy().DataCenter {
		writeNoResource(w, r)
		return
	}
	var in struct {
		IssueIDsOrKeys []any    `json:"issueIdsOrKeys"`
		Fields         []string `json:"fields"`
	}
	if !wire.Decode(w, r, &in) {
		return
	}
	switch n := len(in.IssueIDsOrKeys); {
	case n == 0:
		wire.Errors(w, http.StatusBadRequest, []string{"Specify at least one issue ID or key in 'issueIdsOrKeys'."}, nil)
		return
	case n > maxBulkFetch:
		wire.Errors(w, http.StatusBadRequest, []string{"You can request up to 100 issues; this request names " + strconv.Itoa(n) + "."}, nil)
		return
	}
	issues := []map[string]any{}
	if wire.CallerOf(r).Anonymous {
		wire.JSON(w, http.StatusOK, map[string]any{"issues": issues, "issueErrors": []any{}})
		return
	}
	var found []*Issue
	for _, k := range in.IssueIDsOrKeys {
		if is := s.find(wire.IDString(k)); is != nil && !slices.Contains(found, is) {
			found = append(found, is)
		}
	}
	slices.SortFunc(found, func(a, b *Issue) int { return numericID(a) - numericID(b) })
	fields := in.Fields
	if len(fields) == 0 {
		fields = []string{"*navigable"}
	}
	issueErrors := []any{}
	for _, is := range found {
		if s.policy().BulkFetchErrors {
			// BulkIssueResults.issueErrors: IssueError {id, errorMessage}.
			issueErrors = append(issueErrors, map[string]any{"id": is.ID, "errorMessage": "The issue could not be retrieved. Retry the request."})
			continue
		}
		issues = append(issues, s.render(r, is, fields))
	}
	wire.JSON(w, http.StatusOK, map[string]any{"issues": issues, "issueErrors": issueErrors})
}

func numericID(is *Issue) int {
	n, _ := strconv.Atoi(is.ID)
	return n
}

// HandleEdit is PUT /rest/api/N/issue/{key}: setting fields and the
// labels add/remove/set operations, as a ticketer may need after a JSM
// create.
func (s *Service) HandleEdit(w http.ResponseWriter, r *http.Request) {
	is := s.find(r.PathValue("key"))
	if is == nil {
		writeNoIssue(w)
		return
	}
	var in struct {
		Fields map[string]any `json:"fields"`
		Update struct {
			Labels []map[string]any `json:"labels"`
		} `json:"update"`
	}
	if !wire.Decode(w, r, &in) {
		return
	}
	errs := s.cat.ValidateEdit(in.Fields, wire.APIVersion(r) == "v3")
	reporter, requestType := s.people(in.Fields, errs)
	if len(errs) > 0 {
		wire.Errors(w, http.StatusBadRequest, nil, errs)
		return
	}
	for _, op := range in.Update.Labels {
		for _, verb := range []string{"add", "set"} {
			v, ok := op[verb]
			if !ok {
				continue
			}
			if verb == "add" {
				v = []any{v}
			}
			if msg := catalog.CheckLabels(v); msg != "" {
				wire.Errors(w, http.StatusBadRequest, nil, map[string]string{"labels": msg})
				return
			}
		}
	}
	s.mu.Lock()
	fields := maps.Clone(is.Fields)
	maps.Copy(fields, in.Fields)
	labels := slices.Clone(is.Labels)
	if l, ok := in.Fields["labels"]; ok {
		labels = labelsOf(l)
	}
	for _, op := range in.Update.Labels {
		if v, ok := op["add"].(string); ok && !slices.Contains(labels, v) {
			labels = append(labels, v)
		}
		if v, ok := op["remove"].(string); ok {
			labels = slices.DeleteFunc(labels, func(l string) bool { return l == v })
		}
		if v, ok := op["set"]; ok {
			labels = labelsOf(v)
		}
	}
	if len(labels) > 0 || is.Fields["labels"] != nil {
		fields["labels"] = toAnySlice(labels)
	}
	if reporter != "" {
		is.Reporter = reporter
	}
	if v, ok := in.Fields[catalog.RequestTypeField]; ok {
		if v == nil {
			is.RequestTypeID = ""
		} else if requestType != "" {
			is.RequestTypeID = requestType
		}
	}
	is.Fields, is.Labels = fields, labels
	s.mu.Unlock()
	s.changed()
	w.WriteHeader(http.StatusNoContent)
}
