package jirasandbox

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/cowjacket/formjira/internal/jirasandbox/accounts"
	"github.com/cowjacket/formjira/internal/jirasandbox/catalog"
	"github.com/cowjacket/formjira/internal/jirasandbox/wire"
)

// serveFixture answers with fixture JSON whose links point at this sandbox.
func serveFixture(w http.ResponseWriter, r *http.Request, b []byte) {
	wire.Raw(w, http.StatusOK, catalog.Localize(b, wire.BaseURL(r)))
}

func (s *Server) projectOr404(w http.ResponseWriter, r *http.Request) bool {
	if !s.cat.ProjectOK(r.PathValue("project")) {
		wire.Errors(w, http.StatusNotFound, []string{"No project could be found with key '" + r.PathValue("project") + "'."}, nil)
		return false
	}
	return true
}

// page reads createmeta's startAt and maxResults: maxResults defaults to
// 50 and may not exceed 200 (400 with Jira's wording); CreateMetaPageSize
// caps it further, the answer's maxResults showing the cap.
// https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/#api-rest-api-3-issue-createmeta-projectidorkey-issuetypes-issuetypeid-get
func (s *Server) page(w http.ResponseWriter, r *http.Request, key string) (catalog.Page, bool) {
	q := r.URL.Query()
	startAt, _ := strconv.Atoi(q.Get("startAt"))
	maxResults, err := strconv.Atoi(q.Get("maxResults"))
	if err != nil || maxResults <= 0 {
		maxResults = 50
	}
	if maxResults > catalog.MaxCreateMetaResults {
		wire.JSON(w, http.StatusBadRequest, map[string]any{
			"errorMessages":  []string{"Parameter 'maxResults' must not exceed the limit '200'"},
			"errors":         map[string]string{},
			"httpStatusCode": map[string]bool{"empty": false, "present": true},
		})
		return catalog.Page{}, false
	}
	o, _ := s.options()
	if o.CreateMetaPageSize > 0 {
		maxResults = min(maxResults, o.CreateMetaPageSize)
	}
	return catalog.Page{StartAt: max(startAt, 0), MaxResults: maxResults, Key: key, Empty: wire.CallerOf(r).Anonymous}, true
}

func (s *Server) handleIssueTypes(w http.ResponseWriter, r *http.Request) {
	if !s.projectOr404(w, r) {
		return
	}
	o, _ := s.options()
	p, ok := s.page(w, r, o.IssueTypesList)
	if !ok {
		return
	}
	b, err := s.cat.IssueTypes(p)
	if err != nil {
		wire.Errors(w, http.StatusInternalServerError, []string{err.Error()}, nil)
		return
	}
	serveFixture(w, r, b)
}

func (s *Server) handleCreateMeta(w http.ResponseWriter, r *http.Request) {
	if !s.projectOr404(w, r) {
		return
	}
	if r.PathValue("id") != s.cat.IssueTypeID() {
		wire.Errors(w, http.StatusNotFound, []string{"Issue type with id '" + r.PathValue("id") + "' does not exist or is not valid for this project."}, nil)
		return
	}
	o, _ := s.options()
	p, ok := s.page(w, r, o.CreateMetaList)
	if !ok {
		return
	}
	b, err := s.cat.CreateMeta(p)
	if err != nil {
		wire.Errors(w, http.StatusInternalServerError, []string{err.Error()}, nil)
		return
	}
	serveFixture(w, r, b)
}

func (s *Server) handleFields(w http.ResponseWriter, r *http.Request) {
	serveFixture(w, r, s.cat.Fields())
}

// handleMyself is GET /myself: the bot, or under AnonymousFallback an
// empty user for an anonymous caller (an "empty myself": 200 with nothing
// in it; Jira documents only 401 here, hence AnonymousMyself401).
// https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-myself/#api-rest-api-3-myself-get
func (s *Server) handleMyself(w http.ResponseWriter, r *http.Request) {
	if wire.CallerOf(r).Anonymous {
		wire.JSON(w, http.StatusOK, map[string]any{})
		return
	}
	wire.JSON(w, http.StatusOK, accounts.UserBean(r, s.dir.Bot(), false))
}

// handleServerInfo is GET /serverInfo, which "can be accessed anonymously".
// https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-server-info/#api-rest-api-3-serverinfo-get
func (s *Server) handleServerInfo(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	deployment := "Cloud"
	if o, _ := s.options(); o.DataCenter {
		deployment = "DataCenter"
	}
	wire.JSON(w, http.StatusOK, map[string]any{
		"baseUrl":        wire.BaseURL(r),
		"displayUrl":     wire.BaseURL(r),
		"version":        "1001.0.0-SNAPSHOT",
		"versionNumbers": []int{1001, 0, 0},
		"deploymentType": deployment,
		"buildNumber":    100289,
		"buildDate":      "2025-10-01T00:00:00.000+0000",
		"serverTime":     now.Format(wire.JiraTime),
		"scmInfo":        "57a0ca5b",
		"serverTitle":    "Jira",
		"serverTimeZone": "Etc/UTC",
		"defaultLocale":  map[string]string{"locale": "en_US"},
	})
}

func (s *Server) handleRequestTypeFields(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("desk") != catalog.ServiceDeskID || r.PathValue("type") != catalog.RequestTypeID {
		wire.JSMError(w, http.StatusNotFound, "The request type you are trying to view does not exist.", "sd.request.type.error.not.found", nil)
		return
	}
	b, err := s.cat.RequestTypeFields()
	if o, _ := s.options(); err == nil && o.DenyCreate != "" {
		b, err = withoutRaiseOnBehalfOf(b)
	}
	if err != nil {
		wire.JSMError(w, http.StatusInternalServerError, err.Error(), "sd.error", nil)
		return
	}
	serveFixture(w, r, b)
}

// withoutRaiseOnBehalfOf is the field list as a bot that may not create
// requests sees it: canRaiseOnBehalfOf, "if a request can be raised on
// behalf of a customer", is false
// (https://developer.atlassian.com/cloud/jira/service-desk/rest/api-group-servicedesk/#api-rest-servicedeskapi-servicedesk-servicedeskid-requesttype-requesttypeid-field-get).
func withoutRaiseOnBehalfOf(b []byte) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	m["canRaiseOnBehalfOf"] = json.RawMessage("false")
	return json.Marshal(m)
}
