package jirasandbox

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
)

// writeJSMError answers in the Service Management API's error shape, which
// differs from the platform's ErrorCollection.
func writeJSMError(w http.ResponseWriter, status int, msg, i18nKey string, params []string) {
	if params == nil {
		params = []string{}
	}
	writeJSON(w, status, map[string]any{
		"errorMessage":     msg,
		"i18nErrorMessage": map[string]any{"i18nKey": i18nKey, "parameters": params},
	})
}

func jsmDate(t time.Time) map[string]any {
	return map[string]any{
		"iso8601":     t.Format("2006-01-02T15:04:05-0700"),
		"jira":        t.Format(jiraTime),
		"friendly":    "Today " + t.Format("3:04 PM"),
		"epochMillis": t.UnixMilli(),
	}
}

func (s *Server) handleRequestTypeFields(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("desk") != serviceDeskID || r.PathValue("type") != requestTypeID {
		writeJSMError(w, http.StatusNotFound, "The request type you are trying to view does not exist.", "sd.request.type.error.not.found", nil)
		return
	}
	b, err := s.cat.requestTypeJSON()
	if err != nil {
		writeJSMError(w, http.StatusInternalServerError, err.Error(), "sd.error", nil)
		return
	}
	serveFixture(w, r, b)
}

// handleCreateRequest is POST /rest/servicedeskapi/request: a customer
// request of type 41 on service desk 4, validated against the request
// type's fields.
func (s *Server) handleCreateRequest(w http.ResponseWriter, r *http.Request) {
	var in struct {
		ServiceDeskID      any            `json:"serviceDeskId"`
		RequestTypeID      any            `json:"requestTypeId"`
		RequestFieldValues map[string]any `json:"requestFieldValues"`
		RaiseOnBehalfOf    string         `json:"raiseOnBehalfOf"`
		IsAdfRequest       bool           `json:"isAdfRequest"`
	}
	if !decodeBody(w, r, &in) {
		return
	}
	desk, typ := idString(in.ServiceDeskID), idString(in.RequestTypeID)
	if desk != serviceDeskID {
		writeJSMError(w, http.StatusNotFound, fmt.Sprintf("The service desk with ID '%s' does not exist.", desk), "sd.service.desk.error.not.found", []string{desk})
		return
	}
	if typ != requestTypeID {
		writeJSMError(w, http.StatusBadRequest, fmt.Sprintf("The request type with ID '%s' does not exist in this service desk.", typ), "sd.request.type.error.not.found", []string{typ})
		return
	}
	if in.RequestFieldValues == nil {
		in.RequestFieldValues = map[string]any{}
	}
	errs := s.cat.validateRequest(in.RequestFieldValues, in.IsAdfRequest)
	num := s.allocate()
	if len(errs) > 0 {
		ids := slices.Sorted(maps.Keys(errs))
		parts := make([]string, len(ids))
		key := "sd.validation.request.creation.failure.required.field"
		for i, id := range ids {
			parts[i] = id + ": " + errs[id]
			if !strings.HasSuffix(errs[id], " is required.") && errs[id] != msgSummaryMissing {
				key = "sd.validation.request.creation.failure"
			}
		}
		writeJSMError(w, http.StatusBadRequest,
			"Your request could not be created. Please check the fields have been correctly filled in. "+strings.Join(parts, "; "),
			key, ids)
		return
	}
	is := s.record(num, in.RequestFieldValues, nil, "jsm", in.RaiseOnBehalfOf)
	if s.createdBut500() {
		s.log.Info("jira sandbox created but answered 500", "jira_key", is.Key)
		writeJSMError(w, http.StatusInternalServerError, "Internal server error", "sd.error", nil)
		return
	}

	base := baseURL(r)
	reporter := map[string]any{"accountId": "5b10ac8d82e05b22cc7d4ef5", "displayName": "Jira Sandbox", "active": true, "timeZone": "UTC"}
	if in.RaiseOnBehalfOf != "" {
		// JSM resolves an email address to a customer account; the sandbox
		// echoes it.
		reporter = map[string]any{"accountId": "qm:" + in.RaiseOnBehalfOf, "displayName": in.RaiseOnBehalfOf, "active": true, "timeZone": "UTC"}
		if strings.Contains(in.RaiseOnBehalfOf, "@") {
			reporter["emailAddress"] = in.RaiseOnBehalfOf
		}
	}
	values := []map[string]any{}
	s.cat.mu.RLock()
	for _, f := range s.cat.jsm {
		if v, ok := in.RequestFieldValues[f.ID]; ok {
			values = append(values, map[string]any{"fieldId": f.ID, "label": f.Name, "value": v})
		}
	}
	s.cat.mu.RUnlock()
	writeJSON(w, http.StatusCreated, map[string]any{
		"_expands":           []string{"participant", "status", "sla", "requestType", "serviceDesk", "attachment", "action", "comment"},
		"issueId":            is.ID,
		"issueKey":           is.Key,
		"requestTypeId":      requestTypeID,
		"serviceDeskId":      serviceDeskID,
		"createdDate":        jsmDate(is.Created),
		"reporter":           reporter,
		"requestFieldValues": values,
		"currentStatus": map[string]any{
			"status": "Waiting for support", "statusCategory": "NEW", "statusDate": jsmDate(is.Created),
		},
		"_links": map[string]any{
			"self":     base + "/rest/servicedeskapi/request/" + is.ID,
			"jiraRest": base + "/rest/api/2/issue/" + is.ID,
			"web":      base + "/servicedesk/customer/portal/" + serviceDeskID + "/" + is.Key,
			"agent":    base + "/browse/" + is.Key,
		},
	})
}
