package issues

import (
	"cmp"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cowjacket/formjira/internal/jirasandbox/accounts"
	"github.com/cowjacket/formjira/internal/jirasandbox/catalog"
	"github.com/cowjacket/formjira/internal/jirasandbox/wire"
)

func jsmDate(t time.Time) map[string]any {
	return map[string]any{
		"iso8601":     t.Format("2006-01-02T15:04:05-0700"),
		"jira":        t.Format(wire.JiraTime),
		"friendly":    "Today " + t.Format("3:04 PM"),
		"epochMillis": t.UnixMilli(),
	}
}

// onBehalfOf decides who a request is raised for. Without strict rules
// any string is taken (today's sandbox; Server/DC and pre-GDPR Cloud took
// usernames or e-mails) and resolved to an account when it names one by id
// or e-mail. With them, raiseOnBehalfOf is "The accountId of the customer
// that the request is being raised on behalf of" and nothing else
// (https://developer.atlassian.com/cloud/jira/service-desk/rest/api-group-request/#api-rest-servicedeskapi-request-post),
// and the desk's channel access applies
// (https://support.atlassian.com/jira/kb/manage-access-jira-service-management-projects-requests/):
// on an Open desk anyone with an account may be raised for and becomes a
// customer; on a Restricted one only its customers — unless
// RestrictedAddsCustomer, the KB's "or by raising a request on their
// behalf". JSM documents no status or wording for these refusals (research
// notes §1.6): 400 in JSM's shape, naming raiseOnBehalfOf; NotCustomerStatus
// switches the restricted case to 403.
func (s *Service) onBehalfOf(w http.ResponseWriter, pol Policy, rob string) (reporter string, ok bool) {
	if rob == "" {
		return accounts.BotAccountID, true
	}
	if !pol.StrictCustomers {
		if a, found := s.dir.Get(rob); found {
			return a.AccountID, true
		}
		if a, found := s.dir.ByEmail(rob); found {
			return a.AccountID, true
		}
		return rob, true
	}
	a, found := s.dir.Get(rob)
	if !found {
		wire.JSMError(w, http.StatusBadRequest,
			fmt.Sprintf("raiseOnBehalfOf: no account has the ID '%s'. Give the accountId of a customer, not an e-mail address or username.", rob),
			"sd.request.create.error.raiseonbehalfof.invalid", []string{"raiseOnBehalfOf", rob})
		return "", false
	}
	if a.AccountID == accounts.BotAccountID { // the bot raising for itself
		return a.AccountID, true
	}
	if !a.OnDesk(catalog.ServiceDeskID) {
		if pol.DeskAccess == DeskRestricted && !pol.RestrictedAddsCustomer {
			status := pol.NotCustomerStatus
			if status != http.StatusForbidden {
				status = http.StatusBadRequest
			}
			wire.JSMError(w, status,
				fmt.Sprintf("raiseOnBehalfOf: '%s' is not a customer of this service project, and only its customers can raise requests. Add them as a customer first.", rob),
				"sd.request.create.error.raiseonbehalfof.not.customer", []string{"raiseOnBehalfOf", rob})
			return "", false
		}
		s.dir.AddToDesk(catalog.ServiceDeskID, a.AccountID)
	}
	return a.AccountID, true
}

// HandleCreateRequest is POST /rest/servicedeskapi/request: a customer
// request of type 41 on service desk 4, validated against the request
// type's fields.
// https://developer.atlassian.com/cloud/jira/service-desk/rest/api-group-request/#api-rest-servicedeskapi-request-post
func (s *Service) HandleCreateRequest(w http.ResponseWriter, r *http.Request) {
	var in struct {
		ServiceDeskID      any            `json:"serviceDeskId"`
		RequestTypeID      any            `json:"requestTypeId"`
		RequestFieldValues map[string]any `json:"requestFieldValues"`
		RaiseOnBehalfOf    string         `json:"raiseOnBehalfOf"`
		IsAdfRequest       bool           `json:"isAdfRequest"`
	}
	if !wire.Decode(w, r, &in) {
		return
	}
	desk, typ := wire.IDString(in.ServiceDeskID), wire.IDString(in.RequestTypeID)
	if desk != catalog.ServiceDeskID {
		wire.JSMError(w, http.StatusNotFound, fmt.Sprintf("The service desk with ID '%s' does not exist.", desk), "sd.service.desk.error.not.found", []string{desk})
		return
	}
	if typ != catalog.RequestTypeID {
		wire.JSMError(w, http.StatusBadRequest, fmt.Sprintf("The request type with ID '%s' does not exist in this service desk.", typ), "sd.request.type.error.not.found", []string{typ})
		return
	}
	pol := s.policy()
	if pol.DenyCreate != "" {
		wire.JSMError(w, http.StatusForbidden, "You do not have permission to create requests in this service project.", "sd.request.create.error.no.permission", nil)
		return
	}
	reporter, ok := s.onBehalfOf(w, pol, in.RaiseOnBehalfOf)
	if !ok {
		return
	}
	if in.RequestFieldValues == nil {
		in.RequestFieldValues = map[string]any{}
	}
	errs := s.cat.ValidateRequest(in.RequestFieldValues, in.IsAdfRequest)
	num := s.allocate()
	if len(errs) > 0 {
		ids := slices.Sorted(maps.Keys(errs))
		parts := make([]string, len(ids))
		key := "sd.validation.request.creation.failure.required.field"
		names := s.cat.FieldNames()
		for i, id := range ids {
			parts[i] = id + ": " + errs[id]
			if pol.JSMErrorsByName {
				parts[i] = fmt.Sprintf("Please provide a valid value for field '%s'", cmp.Or(names[id], id))
			}
			if !strings.HasSuffix(errs[id], " is required.") && errs[id] != catalog.MsgSummaryMissing {
				key = "sd.validation.request.creation.failure"
			}
		}
		wire.JSMError(w, http.StatusBadRequest,
			"Your request could not be created. Please check the fields have been correctly filled in. "+strings.Join(parts, "; "),
			key, ids)
		return
	}
	is := s.record(num, &Issue{
		Fields: in.RequestFieldValues, API: "jsm", RaisedOnBehalfOf: in.RaiseOnBehalfOf,
		RequestTypeID: catalog.RequestTypeID, Reporter: reporter,
	})
	if s.faults.CreatedBut500() {
		s.log.Info("jira sandbox created but answered 500", "jira_key", is.Key)
		wire.JSMError(w, http.StatusInternalServerError, "Internal server error", "sd.error", nil)
		return
	}

	base := wire.BaseURL(r)
	var rep map[string]any
	if a, found := s.dir.Get(reporter); found {
		rep = accounts.CustomerDTO(r, a, false)
	} else {
		// A lenient sandbox echoes what it was given.
		rep = map[string]any{"accountId": reporter, "displayName": reporter, "active": true, "timeZone": "UTC"}
		if strings.Contains(reporter, "@") {
			rep["emailAddress"] = reporter
		}
	}
	values := []map[string]any{}
	for _, f := range s.cat.RequestFields() {
		if v, ok := in.RequestFieldValues[f.ID]; ok {
			values = append(values, map[string]any{"fieldId": f.ID, "label": f.Name, "value": v})
		}
	}
	wire.JSON(w, http.StatusCreated, map[string]any{
		"_expands":           []string{"participant", "status", "sla", "requestType", "serviceDesk", "attachment", "action", "comment"},
		"issueId":            is.ID,
		"issueKey":           is.Key,
		"requestTypeId":      catalog.RequestTypeID,
		"serviceDeskId":      catalog.ServiceDeskID,
		"createdDate":        jsmDate(is.Created),
		"reporter":           rep,
		"requestFieldValues": values,
		"currentStatus": map[string]any{
			"status": "Waiting for support", "statusCategory": "NEW", "statusDate": jsmDate(is.Created),
		},
		"_links": map[string]any{
			"self":     base + "/rest/servicedeskapi/request/" + is.ID,
			"jiraRest": base + "/rest/api/2/issue/" + is.ID,
			"web":      base + "/servicedesk/customer/portal/" + catalog.ServiceDeskID + "/" + is.Key,
			"agent":    base + "/browse/" + is.Key,
		},
	})
}
