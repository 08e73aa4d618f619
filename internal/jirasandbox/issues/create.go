package issues

import (
	"fmt"
	"net/http"

	"github.com/cowjacket/formjira/internal/jirasandbox/catalog"
	"github.com/cowjacket/formjira/internal/jirasandbox/wire"
)

const maxBulk = 50

type issueInput struct {
	Fields map[string]any `json:"fields"`
	Update map[string]any `json:"update"`
}

// people resolves the reporter and the Customer Request Type of a create
// (or edit) whose fields passed the catalog's checks, adding Jira's field
// errors to errs. reporter accepts {"id": accountId} as the reference's
// example does and {"accountId": …} as go-atlassian sends it; an unknown
// account is "Account ID … does not exist." as Jira Cloud words it
// (reported in https://github.com/go-jira/jira/issues/333).
func (s *Service) people(fields map[string]any, errs map[string]string) (reporter, requestType string) {
	form := s.policy().RequestTypeForm
	if m, ok := fields["reporter"].(map[string]any); ok && errs["reporter"] == "" {
		id := wire.IDString(m["accountId"])
		if id == "" {
			id = wire.IDString(m["id"])
		}
		if _, known := s.dir.Get(id); !known {
			errs["reporter"] = fmt.Sprintf("Account ID %s does not exist.", id)
		} else {
			reporter = id
		}
	}
	if v, ok := fields[catalog.RequestTypeField].(string); ok && errs[catalog.RequestTypeField] == "" {
		requestType, _ = catalog.RequestTypeOf(v)
		if (form == RequestTypeFormID && v != requestType) || (form == RequestTypeFormPortalKey && v == requestType) {
			errs[catalog.RequestTypeField] = fmt.Sprintf("The request type '%s' does not exist in this service project.", v)
			requestType = ""
		}
	}
	return reporter, requestType
}

// createOne validates and, if valid, records one issue. It returns the
// issue or Jira's field errors.
func (s *Service) createOne(in issueInput, api string) (*Issue, map[string]string) {
	if in.Fields == nil {
		in.Fields = map[string]any{}
	}
	errs, projectOK := s.cat.ValidateCreate(in.Fields, api == "v3" || api == "bulk-v3")
	if !projectOK {
		return nil, errs
	}
	reporter, requestType := s.people(in.Fields, errs)
	num := s.allocate()
	if len(errs) > 0 {
		return nil, errs
	}
	return s.record(num, &Issue{
		Fields: in.Fields, Labels: labelsOf(in.Fields["labels"]), API: api,
		Reporter: reporter, RequestTypeID: requestType,
	}), nil
}

func issueRef(r *http.Request, is *Issue) map[string]any {
	return map[string]any{"id": is.ID, "key": is.Key, "self": wire.BaseURL(r) + wire.APIPrefix(r) + "/issue/" + is.ID}
}

// denial is how a create is refused without the Create issues permission:
// status and errorMessages, in the style chosen (DenyCreate403…).
func denial(style string, fields map[string]any) (int, string) {
	switch style {
	case DenyCreate403Access:
		return http.StatusForbidden, "You currently don't have access to perform this operation."
	case DenyCreate400Project:
		p, _ := fields["project"].(map[string]any)
		name := wire.IDString(p["key"])
		if name == "" {
			name = wire.IDString(p["id"])
		}
		return http.StatusBadRequest, fmt.Sprintf("The value '%s' does not exist for the field 'project'.", name)
	}
	return http.StatusForbidden, "You do not have permission to create issues in this project."
}

// HandleCreate is POST /rest/api/N/issue.
// https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/#api-rest-api-3-issue-post
func (s *Service) HandleCreate(w http.ResponseWriter, r *http.Request) {
	var in issueInput
	if !wire.Decode(w, r, &in) {
		return
	}
	if deny := s.policy().DenyCreate; deny != "" {
		status, msg := denial(deny, in.Fields)
		wire.Errors(w, status, []string{msg}, nil)
		return
	}
	is, errs := s.createOne(in, wire.APIVersion(r))
	if errs != nil {
		wire.Errors(w, http.StatusBadRequest, nil, errs)
		return
	}
	if s.faults.CreatedBut500() {
		s.log.Info("jira sandbox created but answered 500", "jira_key", is.Key)
		wire.Errors(w, http.StatusInternalServerError, []string{"Internal server error"}, nil)
		return
	}
	wire.JSON(w, http.StatusCreated, issueRef(r, is))
}

type bulkError struct {
	Status        int `json:"status"`
	ElementErrors struct {
		ErrorMessages []string          `json:"errorMessages"`
		Errors        map[string]string `json:"errors"`
		Status        int               `json:"status"`
	} `json:"elementErrors"`
	// FailedElementNumber is the 0-based index into issueUpdates: the only
	// thing in the answer that maps back to the request.
	FailedElementNumber int `json:"failedElementNumber"`
}

func elementError(i, status int, messages []string, errs map[string]string) bulkError {
	e := bulkError{Status: status, FailedElementNumber: i}
	if messages == nil {
		messages = []string{}
	}
	if errs == nil {
		errs = map[string]string{}
	}
	e.ElementErrors.ErrorMessages, e.ElementErrors.Errors, e.ElementErrors.Status = messages, errs, status
	return e
}

// HandleBulk is POST /rest/api/N/issue/bulk: 201 when at least one issue
// was created (the failures listed in "errors"), 400 with the same body
// when none was. Jira promises no order for issues[] (JRACLOUD-81005,
// https://jira.atlassian.com/browse/JRACLOUD-81005): with ShuffleBulk the
// answer lists them in random order.
// https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/#api-rest-api-3-issue-bulk-post
func (s *Service) HandleBulk(w http.ResponseWriter, r *http.Request) {
	var in struct {
		IssueUpdates []issueInput `json:"issueUpdates"`
	}
	if !wire.Decode(w, r, &in) {
		return
	}
	switch n := len(in.IssueUpdates); {
	case n == 0:
		wire.Errors(w, http.StatusBadRequest, []string{"Specify at least one issue to create."}, nil)
		return
	case n > maxBulk:
		wire.Errors(w, http.StatusBadRequest, []string{fmt.Sprintf("You can create at most %d issues in one request; this request has %d.", maxBulk, n)}, nil)
		return
	}
	if s.faults.RejectBulk() {
		// A 400 about the request as a whole, with no element errors: the
		// client cannot tell which issue is at fault and must try them one
		// by one.
		s.log.Info("jira sandbox rejected a bulk create as a whole", "issues", len(in.IssueUpdates))
		wire.Errors(w, http.StatusBadRequest, []string{"The issues could not be created. Correct the request and try again, or create the issues one at a time."}, nil)
		return
	}
	pol := s.policy()
	api := "bulk-" + wire.APIVersion(r)
	created := []map[string]any{}
	failed := []bulkError{}
	for i, u := range in.IssueUpdates {
		if pol.DenyCreate != "" {
			// The bulk reference lists no 403: a permission failure is the
			// element's (research notes §4).
			status, msg := denial(pol.DenyCreate, u.Fields)
			failed = append(failed, elementError(i, status, []string{msg}, nil))
			continue
		}
		is, errs := s.createOne(u, api)
		if errs != nil {
			failed = append(failed, elementError(i, http.StatusBadRequest, nil, errs))
			continue
		}
		created = append(created, issueRef(r, is))
	}
	if pol.ShuffleBulk {
		s.faults.Shuffle(len(created), func(i, j int) { created[i], created[j] = created[j], created[i] })
	}
	status := http.StatusCreated
	if len(created) == 0 {
		status = http.StatusBadRequest
	} else if s.faults.CreatedBut500() {
		s.log.Info("jira sandbox bulk created but answered 500", "created", len(created))
		wire.Errors(w, http.StatusInternalServerError, []string{"Internal server error"}, nil)
		return
	}
	wire.JSON(w, status, map[string]any{"issues": created, "errors": failed})
}
