package accounts

import (
	"fmt"
	"net/http"
	"net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/cowjacket/formjira/internal/jirasandbox/wire"
)

func avatars(base, id string) map[string]any {
	u := base + "/secure/useravatar?ownerId=" + url.QueryEscape(id)
	return map[string]any{"48x48": u, "24x24": u + "&size=small", "16x16": u + "&size=xsmall", "32x32": u + "&size=medium"}
}

// UserBean renders a as the platform's User bean; the e-mail is left out
// when hidden, as profile visibility does
// (https://developer.atlassian.com/cloud/jira/platform/profile-visibility/).
func UserBean(r *http.Request, a Account, hideEmail bool) map[string]any {
	base := wire.BaseURL(r)
	u := map[string]any{
		"self":        base + wire.APIPrefix(r) + "/user?accountId=" + url.QueryEscape(a.AccountID),
		"accountId":   a.AccountID,
		"accountType": a.AccountType,
		"avatarUrls":  avatars(base, a.AccountID),
		"displayName": a.DisplayName,
		"active":      true,
		"timeZone":    "UTC",
		"locale":      "en_US",
	}
	if !hideEmail && a.Email != "" {
		u["emailAddress"] = a.Email
	}
	return u
}

// CustomerDTO renders a as JSM's UserDTO: emailAddress is null when the
// customer's privacy settings hide it.
func CustomerDTO(r *http.Request, a Account, hideEmail bool) map[string]any {
	base := wire.BaseURL(r)
	var email any = a.Email
	if hideEmail {
		email = nil
	}
	return map[string]any{
		"accountId":    a.AccountID,
		"emailAddress": email,
		"displayName":  a.DisplayName,
		"active":       true,
		"timeZone":     "UTC",
		"_links": map[string]any{
			"jiraRest":   base + "/rest/api/2/user?accountId=" + url.QueryEscape(a.AccountID),
			"avatarUrls": avatars(base, a.AccountID),
			"self":       base + "/rest/api/2/user?accountId=" + url.QueryEscape(a.AccountID),
		},
	}
}

// HandleUserSearch is GET /rest/api/N/user/search: query matches a prefix
// of the display name (or of one of its words) or of the e-mail, even when
// the e-mail is then hidden; accountId matches exactly; both at once is a
// 400. Anonymous callers get an empty list, not an error.
// https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-user-search/#api-rest-api-3-user-search-get
func (d *Directory) HandleUserSearch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	query, id := strings.TrimSpace(q.Get("query")), q.Get("accountId")
	switch {
	case query != "" && id != "":
		wire.Errors(w, http.StatusBadRequest, []string{"Parameters 'query' and 'accountId' cannot be used together."}, nil)
		return
	case query == "" && id == "" && q.Get("property") == "":
		wire.Errors(w, http.StatusBadRequest, []string{"One of 'query', 'accountId' or 'property' query parameters must be provided."}, nil)
		return
	}
	out := []map[string]any{}
	if wire.CallerOf(r).Anonymous {
		wire.JSON(w, http.StatusOK, out)
		return
	}
	pol := d.currentPolicy()
	var hits []Account
	for _, a := range d.All() {
		if (id != "" && a.AccountID == id) || (query != "" && prefixMatch(a, query)) {
			hits = append(hits, a)
		}
	}
	start, limit := wire.IntParam(r, "startAt", 0), wire.IntParam(r, "maxResults", 50)
	if limit == 0 {
		limit = 50
	}
	for _, a := range hits[min(start, len(hits)):min(start+limit, len(hits))] {
		out = append(out, UserBean(r, a, pol.HideEmails))
	}
	wire.JSON(w, http.StatusOK, out)
}

func prefixMatch(a Account, q string) bool {
	q = strings.ToLower(q)
	name := strings.ToLower(a.DisplayName)
	if strings.HasPrefix(strings.ToLower(a.Email), q) || strings.HasPrefix(name, q) {
		return true
	}
	for _, w := range strings.Fields(name) {
		if strings.HasPrefix(w, q) {
			return true
		}
	}
	return false
}

// HandleUser is GET /rest/api/N/user?accountId=.
// https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-users/#api-rest-api-3-user-get
func (d *Directory) HandleUser(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("accountId")
	if id == "" {
		wire.Errors(w, http.StatusBadRequest, []string{"The query parameter 'accountId' is required."}, nil)
		return
	}
	a, ok := d.Get(id)
	if !ok {
		wire.Errors(w, http.StatusNotFound, []string{"Specified user does not exist or you do not have required permissions"}, nil)
		return
	}
	wire.JSON(w, http.StatusOK, UserBean(r, a, d.currentPolicy().HideEmails))
}

func (d *Directory) deskOr404(w http.ResponseWriter, r *http.Request) (string, bool) {
	desk, ok := d.ResolveDesk(r.PathValue("desk"))
	if !ok {
		wire.JSMError(w, http.StatusNotFound, fmt.Sprintf("The service desk with ID '%s' does not exist.", r.PathValue("desk")),
			"sd.service.desk.error.not.found", []string{r.PathValue("desk")})
	}
	return desk, ok
}

// HandleListCustomers is GET /rest/servicedeskapi/servicedesk/{desk}/customer.
// It is experimental: without "X-ExperimentalApi: opt-in" JSM answers 412
// (JSM intro, "Experimental methods"). query is a partial match on e-mail
// or display name, not an exact lookup; pages are start/limit with
// isLastPage, and a limit above the server's maximum is capped, so a page
// may hold fewer than limit items and still not be the last.
// https://developer.atlassian.com/cloud/jira/service-desk/rest/api-group-servicedesk/#api-rest-servicedeskapi-servicedesk-servicedeskid-customer-get
func (d *Directory) HandleListCustomers(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-ExperimentalApi") != "opt-in" {
		wire.JSMError(w, http.StatusPreconditionFailed,
			"This API is experimental. Experimental APIs are not guaranteed to be stable within the version. Pass the header 'X-ExperimentalApi: opt-in' to use it.",
			"sd.experimental.api.header.missing", nil)
		return
	}
	desk, ok := d.deskOr404(w, r)
	if !ok {
		return
	}
	pol := d.currentPolicy()
	query := strings.ToLower(strings.TrimSpace(r.URL.Query().Get("query")))
	var hits []Account
	for _, a := range d.All() {
		listed := a.OnDesk(desk) || (pol.OpenDesk && a.AccountType == TypeCustomer)
		if listed && (query == "" || strings.Contains(strings.ToLower(a.Email), query) || strings.Contains(strings.ToLower(a.DisplayName), query)) {
			hits = append(hits, a)
		}
	}
	start, limit := wire.IntParam(r, "start", 0), wire.IntParam(r, "limit", 50)
	if limit == 0 {
		limit = 50
	}
	capped := limit
	if pol.CustomerPageMax > 0 {
		capped = min(limit, pol.CustomerPageMax)
	}
	capped = min(capped, 50)
	start = min(start, len(hits))
	end := min(start+capped, len(hits))
	values := []map[string]any{}
	for _, a := range hits[start:end] {
		values = append(values, CustomerDTO(r, a, pol.HideCustomerEmails))
	}
	self := wire.BaseURL(r) + r.URL.Path
	links := map[string]any{"base": wire.BaseURL(r) + "/rest/servicedeskapi", "context": ""}
	if end < len(hits) {
		links["next"] = self + "?start=" + strconv.Itoa(end) + "&limit=" + strconv.Itoa(limit)
	}
	if start > 0 {
		links["prev"] = self + "?start=" + strconv.Itoa(max(start-limit, 0)) + "&limit=" + strconv.Itoa(limit)
	}
	wire.JSON(w, http.StatusOK, map[string]any{
		"_expands": []string{}, "size": len(values), "start": start, "limit": limit,
		"isLastPage": end == len(hits), "_links": links, "values": values,
	})
}

// HandleCreateCustomer is POST /rest/servicedeskapi/customer. E-mails are
// unique ignoring case; a duplicate is 409 with
// ?strictConflictStatusCode=true and 400 without (the same 400 as a
// malformed e-mail). It needs the Jira Administrators global permission.
// The new customer is on no service desk.
// https://developer.atlassian.com/cloud/jira/service-desk/rest/api-group-customer/#api-rest-servicedeskapi-customer-post
func (d *Directory) HandleCreateCustomer(w http.ResponseWriter, r *http.Request) {
	if d.currentPolicy().ForbidCreate {
		wire.JSMError(w, http.StatusForbidden,
			"You do not have permission to create customers. Creating customers requires the Jira Administrators global permission.",
			"sd.customer.create.error.no.permission", nil)
		return
	}
	var in struct {
		Email       string `json:"email"`
		DisplayName string `json:"displayName"`
		FullName    string `json:"fullName"` // deprecated spelling of displayName
	}
	if !wire.Decode(w, r, &in) {
		return
	}
	name := strings.TrimSpace(in.DisplayName)
	if name == "" {
		name = strings.TrimSpace(in.FullName)
	}
	if addr, err := mail.ParseAddress(in.Email); err != nil || addr.Address != in.Email || !strings.Contains(in.Email[strings.LastIndex(in.Email, "@")+1:], ".") {
		wire.JSMError(w, http.StatusBadRequest, fmt.Sprintf("The email address '%s' is not valid.", in.Email), "sd.customer.create.error.email.invalid", []string{in.Email})
		return
	}
	if name == "" {
		wire.JSMError(w, http.StatusBadRequest, "The customer's display name must not be empty.", "sd.customer.create.error.displayname.empty", nil)
		return
	}
	a, created := d.Add(in.Email, name)
	if !created {
		status := http.StatusBadRequest
		if strict, _ := strconv.ParseBool(r.URL.Query().Get("strictConflictStatusCode")); strict {
			status = http.StatusConflict
		}
		wire.JSMError(w, status, fmt.Sprintf("A user with email '%s' already exists.", in.Email), "sd.customer.create.error.email.exists", []string{in.Email})
		return
	}
	wire.JSON(w, http.StatusCreated, CustomerDTO(r, a, false))
}

// HandleAddCustomers is POST /rest/servicedeskapi/servicedesk/{desk}/customer
// {"accountIds":[…]}: 204 when every account is now a customer of the desk
// (already being one is fine), 400 when some do not exist, the others
// being added all the same. It needs service desk administrator.
// https://developer.atlassian.com/cloud/jira/service-desk/rest/api-group-servicedesk/#api-rest-servicedeskapi-servicedesk-servicedeskid-customer-post
func (d *Directory) HandleAddCustomers(w http.ResponseWriter, r *http.Request) {
	desk, ok := d.deskOr404(w, r)
	if !ok {
		return
	}
	if d.currentPolicy().ForbidAdd {
		wire.JSMError(w, http.StatusForbidden,
			"You do not have permission to add customers to this service project. Adding customers requires the service project administrator permission.",
			"sd.customers.add.error.no.permission", nil)
		return
	}
	var in struct {
		AccountIDs []string `json:"accountIds"`
		Usernames  []string `json:"usernames"`
	}
	if !wire.Decode(w, r, &in) {
		return
	}
	if len(in.Usernames) > 0 {
		wire.JSMError(w, http.StatusBadRequest, "'usernames' is no longer available: give 'accountIds'.", "sd.customers.add.error.usernames", nil)
		return
	}
	if len(in.AccountIDs) == 0 {
		wire.JSMError(w, http.StatusBadRequest, "Specify at least one account ID in 'accountIds'.", "sd.customers.add.error.empty", nil)
		return
	}
	if unknown := d.AddToDesk(desk, slices.Compact(slices.Sorted(slices.Values(in.AccountIDs)))...); len(unknown) > 0 {
		wire.JSMError(w, http.StatusBadRequest, "These accounts do not exist: "+strings.Join(unknown, ", "), "sd.customers.add.error.not.found", unknown)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
