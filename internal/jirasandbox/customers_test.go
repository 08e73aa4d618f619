package jirasandbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/ctreminiom/go-atlassian/v2/pkg/infra/models"

	"github.com/cowjacket/formjira/internal/jirasandbox"
)

func accountByEmail(t *testing.T, sb *jirasandbox.Server, email string) jirasandbox.Account {
	t.Helper()
	for _, a := range sb.Customers() {
		if strings.EqualFold(a.Email, email) {
			return a
		}
	}
	t.Fatalf("no account for %s in %+v", email, sb.Customers())
	return jirasandbox.Account{}
}

// TestCreateCustomer: POST /rest/servicedeskapi/customer creates a
// portal-only customer on no desk; e-mails are unique ignoring case; a
// duplicate is 400, or 409 with strictConflictStatusCode=true; the bot
// without Jira Administrators gets 403 in JSM's shape.
func TestCreateCustomer(t *testing.T) {
	sb, url := start(t, jirasandbox.Options{})
	c := smClient(t, url)
	ctx := context.Background()

	got, res, err := c.Customer.Create(ctx, "Fred@Example.com", "Fred F. User")
	if err != nil || res.Code != http.StatusCreated {
		t.Fatalf("create: %v %d %s", err, res.Code, res.Bytes.String())
	}
	if !strings.HasPrefix(got.AccountID, "qm:") || got.EmailAddress != "Fred@Example.com" || got.DisplayName != "Fred F. User" {
		t.Errorf("created %+v", got)
	}
	a := accountByEmail(t, sb, "fred@example.com")
	if a.AccountID != got.AccountID || a.AccountType != "customer" || len(a.ServiceDesks) != 0 {
		t.Errorf("recorded %+v: a new customer is on no desk", a)
	}
	if bot := sb.Customers()[0]; bot.AccountID != jirasandbox.BotAccountID || bot.Email != testEmail || bot.AccountType != "atlassian" {
		t.Errorf("first account should be the bot: %+v", bot)
	}

	for _, tc := range []struct {
		name, query, body string
		want              int
		key               string
	}{
		{"duplicate, other case", "", `{"email":"fred@EXAMPLE.com","displayName":"Fred"}`, 400, "sd.customer.create.error.email.exists"},
		{"duplicate, strict conflict code", "?strictConflictStatusCode=true", `{"email":"fred@example.com","displayName":"Fred"}`, 409, "sd.customer.create.error.email.exists"},
		{"strict flag false", "?strictConflictStatusCode=false", `{"email":"fred@example.com","displayName":"Fred"}`, 400, "sd.customer.create.error.email.exists"},
		{"malformed e-mail", "?strictConflictStatusCode=true", `{"email":"fred-at-example","displayName":"Fred"}`, 400, "sd.customer.create.error.email.invalid"},
		{"no display name", "", `{"email":"new@example.com"}`, 400, "sd.customer.create.error.displayname.empty"},
		{"deprecated fullName", "", `{"email":"full@example.com","fullName":"Full Name"}`, 201, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, code := httpDo(t, http.MethodPost, url+"/rest/servicedeskapi/customer"+tc.query, tc.body, nil)
			if code != tc.want {
				t.Fatalf("status %d, want %d: %s", code, tc.want, body)
			}
			if tc.key != "" {
				if e := decodeJSMError(t, body); e.I18nErrorMessage.I18nKey != tc.key {
					t.Errorf("i18nKey %q, want %q", e.I18nErrorMessage.I18nKey, tc.key)
				}
			}
		})
	}
	if n := len(sb.Customers()); n != 3 {
		t.Errorf("%d accounts, want the bot, fred and full", n)
	}

	sb.SetForbidCreateCustomer(true)
	_, res, err = c.Customer.Create(ctx, "other@example.com", "Other")
	if !errors.Is(err, models.ErrInvalidStatusCode) || res.Code != http.StatusForbidden {
		t.Fatalf("forbidden create: %v %d", err, res.Code)
	}
	if e := decodeJSMError(t, res.Bytes.Bytes()); !strings.Contains(e.ErrorMessage, "Jira Administrators") {
		t.Errorf("403 says %q", e.ErrorMessage)
	}
	sb.SetForbidCreateCustomer(false)
	if _, _, err := c.Customer.Create(ctx, "other@example.com", "Other"); err != nil {
		t.Errorf("allowed again: %v", err)
	}
}

// TestAddCustomersToDesk: 204 whether or not they already were customers;
// 400 when some account does not exist, the others added all the same;
// 403 without service desk administrator; 404 for an unknown desk. The
// desk takes JSM's project identifiers too.
func TestAddCustomersToDesk(t *testing.T) {
	sb, url := start(t, jirasandbox.Options{})
	c := smClient(t, url)
	ctx := context.Background()
	a, b := sb.AddCustomer("a@example.com", "A"), sb.AddCustomer("b@example.com", "B")
	if again := sb.AddCustomer("A@example.com", "A again"); again != a {
		t.Errorf("AddCustomer of an existing e-mail = %s, want %s", again, a)
	}
	onDesk := func(id string) bool {
		for _, acc := range sb.Customers() {
			if acc.AccountID == id {
				return acc.OnDesk("4")
			}
		}
		return false
	}
	for range 2 { // idempotent
		if res, err := c.Customer.Add(ctx, "4", []string{a}); err != nil || res.Code != http.StatusNoContent {
			t.Fatalf("add: %v %d", err, res.Code)
		}
	}
	if !onDesk(a) || onDesk(b) {
		t.Fatalf("after add: a on desk %v, b %v", onDesk(a), onDesk(b))
	}
	res, err := c.Customer.Add(ctx, "projectKey:CP", []string{b, "qm:nobody"})
	if !errors.Is(err, models.ErrBadRequest) {
		t.Fatalf("unknown account: %v %d", err, res.Code)
	}
	if e := decodeJSMError(t, res.Bytes.Bytes()); !slices.Equal(e.I18nErrorMessage.Parameters, []string{"qm:nobody"}) {
		t.Errorf("400 names %v", e.I18nErrorMessage.Parameters)
	}
	if !onDesk(b) {
		t.Error("a 400 is a partial success: b must have been added")
	}
	for _, tc := range []struct {
		desk, body string
		want       int
	}{
		{"CP", `{"accountIds":["` + a + `"]}`, 204},
		{"projectId:10010", `{"accountIds":["` + a + `"]}`, 204},
		{"serviceDeskId:4", `{"accountIds":["` + a + `"]}`, 204},
		{"5", `{"accountIds":["` + a + `"]}`, 404},
		{"4", `{"accountIds":[]}`, 400},
		{"4", `{"usernames":["fred"]}`, 400},
	} {
		body, code := httpDo(t, http.MethodPost, url+"/rest/servicedeskapi/servicedesk/"+tc.desk+"/customer", tc.body, nil)
		if code != tc.want {
			t.Errorf("desk %s %s: %d, want %d (%s)", tc.desk, tc.body, code, tc.want, body)
		}
		if code >= 400 {
			decodeJSMError(t, body)
		}
	}
	sb.SetForbidAddCustomer(true)
	res, _ = c.Customer.Add(ctx, "4", []string{a})
	if res.Code != http.StatusForbidden || !strings.Contains(decodeJSMError(t, res.Bytes.Bytes()).ErrorMessage, "administrator") {
		t.Errorf("forbidden add: %d %s", res.Code, res.Bytes.String())
	}
	if err := sb.AddToServiceDesk("qm:none"); err == nil {
		t.Error("AddToServiceDesk of an unknown account must fail")
	}
}

// TestListCustomers: experimental (412 without the opt-in header); partial
// matches on e-mail and display name; paged by start/limit with
// isLastPage, a capped page showing fewer than limit and isLastPage false.
func TestListCustomers(t *testing.T) {
	var pre []jirasandbox.Account
	for _, n := range []string{"anna", "anne", "annika", "bob", "joanna"} {
		pre = append(pre, jirasandbox.Account{Email: n + "@example.com", DisplayName: strings.ToUpper(n[:1]) + n[1:] + " Smith", ServiceDesks: []string{"4"}})
	}
	pre = append(pre, jirasandbox.Account{Email: "annabel@example.com", DisplayName: "Annabel Off-Desk"})
	sb, url := start(t, jirasandbox.Options{Customers: pre})
	ctx := context.Background()

	_, res, err := smClient(t, url).Customer.Gets(ctx, "4", "", 0, 50)
	if err == nil || res.Code != http.StatusPreconditionFailed {
		t.Fatalf("without X-ExperimentalApi: %v %d", err, res.Code)
	}
	if e := decodeJSMError(t, res.Bytes.Bytes()); !strings.Contains(e.ErrorMessage, "X-ExperimentalApi: opt-in") {
		t.Errorf("412 says %q", e.ErrorMessage)
	}

	c := smClientExperimental(t, url)
	emails := func(p *models.CustomerPageScheme) []string {
		var out []string
		for _, v := range p.Values {
			out = append(out, v.EmailAddress)
		}
		return out
	}
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", []string{"anna@example.com", "anne@example.com", "annika@example.com", "bob@example.com", "joanna@example.com"}},
		{"ann", []string{"anna@example.com", "anne@example.com", "annika@example.com", "joanna@example.com"}}, // partial, not prefix
		{"SMI", []string{"anna@example.com", "anne@example.com", "annika@example.com", "bob@example.com", "joanna@example.com"}},
		{"anna@example.com", []string{"anna@example.com", "joanna@example.com"}}, // an e-mail is no exact lookup
		{"nobody", nil},
	} {
		page, res, err := c.Customer.Gets(ctx, "CP", tc.query, 0, 50)
		if err != nil {
			t.Fatalf("query %q: %v %s", tc.query, err, res.Bytes.String())
		}
		if got := emails(page); !slices.Equal(got, tc.want) || !page.IsLastPage || page.Size != len(tc.want) {
			t.Errorf("query %q: %v (last %v size %d), want %v", tc.query, got, page.IsLastPage, page.Size, tc.want)
		}
	}

	page, _, err := c.Customer.Gets(ctx, "4", "", 1, 2)
	if err != nil || !slices.Equal(emails(page), []string{"anne@example.com", "annika@example.com"}) || page.IsLastPage || page.Start != 1 || page.Links.Next == "" {
		t.Errorf("page start 1 limit 2 = %+v %v", page, err)
	}
	sb.Update(func(o *jirasandbox.Options) { o.CustomerPageMax = 2 })
	page, _, err = c.Customer.Gets(ctx, "4", "", 0, 50)
	if err != nil || page.Size != 2 || page.Limit != 50 || page.IsLastPage {
		t.Errorf("capped page = size %d limit %d last %v, %v", page.Size, page.Limit, page.IsLastPage, err)
	}
	var all []string
	for start := 0; ; {
		p, _, err := c.Customer.Gets(ctx, "4", "", start, 50)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, emails(p)...)
		start += p.Size
		if p.IsLastPage {
			break
		}
	}
	if len(all) != 5 {
		t.Errorf("looping on isLastPage read %v", all)
	}

	sb.SetHideEmails(false, true)
	body, code := httpDo(t, http.MethodGet, url+"/rest/servicedeskapi/servicedesk/4/customer?query=bob", "", http.Header{"X-Experimentalapi": {"opt-in"}})
	var raw struct {
		Values []map[string]any `json:"values"`
	}
	if err := json.Unmarshal(body, &raw); code != 200 || err != nil || len(raw.Values) != 1 {
		t.Fatalf("hidden e-mails: %d %s", code, body)
	}
	if v, present := raw.Values[0]["emailAddress"]; !present || v != nil || raw.Values[0]["displayName"] != "Bob Smith" {
		t.Errorf("emailAddress should be null: %s", body)
	}
	if _, code := httpDo(t, http.MethodGet, url+"/rest/servicedeskapi/servicedesk/9/customer", "", http.Header{"X-Experimentalapi": {"opt-in"}}); code != 404 {
		t.Errorf("unknown desk: %d", code)
	}

	// An open desk lists every customer account of the site.
	sb.SetStrictCustomers(true, jirasandbox.DeskOpen)
	sb.Update(func(o *jirasandbox.Options) { o.CustomerPageMax = 0 })
	page, _, _ = c.Customer.Gets(ctx, "4", "annabel", 0, 50)
	if page.Size != 1 {
		t.Errorf("open desk: annabel not listed: %+v", page)
	}
	sb.SetStrictCustomers(true, jirasandbox.DeskRestricted)
	if page, _, _ = c.Customer.Gets(ctx, "4", "annabel", 0, 50); page.Size != 0 {
		t.Errorf("restricted desk lists a non-customer: %+v", page)
	}
}

// TestUserSearch: the platform's user search matches a prefix of the name
// (or one of its words) or of the e-mail, answers a bare array, hides
// e-mails under privacy settings while still matching them, and gives an
// anonymous caller an empty list; GET user finds one account.
func TestUserSearch(t *testing.T) {
	sb, url := start(t, jirasandbox.Options{AnonymousFallback: true, Customers: []jirasandbox.Account{
		{Email: "sara.curtis@example.com", DisplayName: "Sara Curtis"},
		{Email: "tom@example.com", DisplayName: "Tom Sarandon"},
	}})
	c := v3Client(t, url)
	ctx := context.Background()
	sara := accountByEmail(t, sb, "sara.curtis@example.com").AccountID
	names := func(us []*models.UserScheme) []string {
		var out []string
		for _, u := range us {
			out = append(out, u.DisplayName)
		}
		return out
	}
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"sara", []string{"Sara Curtis", "Tom Sarandon"}},
		{"SARA.CURTIS@example.com", []string{"Sara Curtis"}},
		{"curt", []string{"Sara Curtis"}},
		{"urtis", nil}, // prefixes only
		{"jira", []string{"Jira Sandbox"}},
	} {
		got, res, err := c.User.Search.Do(ctx, "", tc.query, 0, 50)
		if err != nil {
			t.Fatalf("%q: %v %s", tc.query, err, res.Bytes.String())
		}
		if !slices.Equal(names(got), tc.want) {
			t.Errorf("query %q: %v, want %v", tc.query, names(got), tc.want)
		}
	}
	got, _, err := c.User.Search.Do(ctx, sara, "", 0, 50)
	if err != nil || len(got) != 1 || got[0].EmailAddress != "sara.curtis@example.com" || got[0].AccountType != "customer" {
		t.Errorf("by accountId: %+v %v", got, err)
	}
	if body, code := httpDo(t, http.MethodGet, url+"/rest/api/3/user/search?query=a&accountId="+sara, "", nil); code != 400 {
		t.Errorf("query and accountId together: %d %s", code, body)
	}

	sb.SetHideEmails(true, false)
	got, _, _ = c.User.Search.Do(ctx, "", "sara.curtis@example.com", 0, 50)
	if len(got) != 1 || got[0].EmailAddress != "" || got[0].AccountID != sara {
		t.Errorf("hidden e-mail: %+v", got)
	}
	u, _, err := c.User.Get(ctx, sara, nil)
	if err != nil || u.AccountID != sara || u.EmailAddress != "" || u.DisplayName != "Sara Curtis" {
		t.Errorf("GET user: %+v %v", u, err)
	}
	if _, res, err := c.User.Get(ctx, "qm:nobody", nil); !errors.Is(err, models.ErrNotFound) {
		t.Errorf("unknown user: %v %d", err, res.Code)
	}

	body, code := httpDo(t, http.MethodGet, url+"/rest/api/2/user/search?query=sara", "", http.Header{"Authorization": {basic(testEmail, "wrong")}})
	if code != 200 || strings.TrimSpace(string(body)) != "[]" {
		t.Errorf("anonymous search: %d %s", code, body)
	}
}
