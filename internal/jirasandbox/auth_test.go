package jirasandbox_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ctreminiom/go-atlassian/v2/pkg/infra/models"

	"github.com/cowjacket/formjira/internal/jirasandbox"
)

// rawCall sends a request with the given Authorization header ("" = none).
func rawCall(t *testing.T, method, u, body, authorization string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header, b
}

// TestDenyCreate: without the Create issues permission a single create is
// refused in the chosen style; a bulk create fails every element (the
// bulk reference has no 403), so it is a 400 listing them.
func TestDenyCreate(t *testing.T) {
	row := sara(t)
	for _, tc := range []struct {
		style  string
		status int
		msg    string
	}{
		{jirasandbox.DenyCreate403, 403, "You do not have permission to create issues in this project."},
		{jirasandbox.DenyCreate403Access, 403, "You currently don't have access to perform this operation."},
		{jirasandbox.DenyCreate400Project, 400, "The value 'CP' does not exist for the field 'project'."},
	} {
		t.Run(tc.style, func(t *testing.T) {
			sb, url := start(t, jirasandbox.Options{})
			sb.SetDenyCreate(tc.style)
			_, res, _ := v2Client(t, url, testEmail, testToken).Issue.Create(context.Background(), &models.IssueSchemeV2{}, rawCustomFields(t, row.rawFields(false)))
			if e := decodeErrors(t, res); res.Code != tc.status || len(e.ErrorMessages) != 1 || e.ErrorMessages[0] != tc.msg || e.Errors == nil {
				t.Errorf("single: %d %s", res.Code, res.Bytes.String())
			}
			a, code, raw := postBulk(t, url, bulkBody(t, row, 2))
			if code != 400 || len(a.Errors) != 2 || a.Errors[1].FailedElementNumber != 1 || a.Errors[0].Status != tc.status ||
				len(a.Errors[0].ElementErrors.ErrorMessages) != 1 || a.Errors[0].ElementErrors.ErrorMessages[0] != tc.msg {
				t.Errorf("bulk: %d %s", code, raw)
			}
			if len(sb.Issues()) != 0 {
				t.Error("created without permission")
			}
			// The credentials are fine: reads work, and SetAuthFailure is another matter.
			if code, h, _ := rawCall(t, http.MethodGet, url+"/rest/api/2/myself", "", basic(testEmail, testToken)); code != 200 || h.Get("X-Seraph-LoginReason") != "OK" {
				t.Errorf("myself: %d %v", code, h)
			}
			sb.SetDenyCreate("")
			if _, _, err := v2Client(t, url, testEmail, testToken).Issue.Create(context.Background(), &models.IssueSchemeV2{}, rawCustomFields(t, row.rawFields(false))); err != nil {
				t.Errorf("allowed again: %v", err)
			}
		})
	}
}

// TestAuthHeaders: authenticated answers say who (X-AAccountId) and OK;
// a 401 for wrong credentials says AUTHENTICATED_FAILED.
func TestAuthHeaders(t *testing.T) {
	_, url := start(t, jirasandbox.Options{})
	for _, tc := range []struct {
		name, auth     string
		status         int
		account, login string
	}{
		{"right", basic(testEmail, testToken), 200, jirasandbox.BotAccountID, "OK"},
		{"wrong", basic(testEmail, "nope"), 401, "", "AUTHENTICATED_FAILED"},
		{"none", "", 401, "", ""},
	} {
		code, h, _ := rawCall(t, http.MethodGet, url+"/rest/api/3/myself", "", tc.auth)
		if code != tc.status || h.Get("X-AAccountId") != tc.account || h.Get("X-Seraph-LoginReason") != tc.login {
			t.Errorf("%s: %d X-AAccountId %q X-Seraph-LoginReason %q", tc.name, code, h.Get("X-AAccountId"), h.Get("X-Seraph-LoginReason"))
		}
	}
}

// TestAnonymousFallback: wrong or missing credentials served as an
// anonymous user: 200 with nothing in it where Jira allows anonymous
// access, 401 elsewhere.
func TestAnonymousFallback(t *testing.T) {
	row := sara(t)
	sb, url := start(t, jirasandbox.Options{AnonymousFallback: true})
	if _, _, err := v2Client(t, url, testEmail, testToken).Issue.Create(context.Background(), &models.IssueSchemeV2{}, rawCustomFields(t, row.rawFields(false))); err != nil {
		t.Fatal(err)
	}
	type check func(t *testing.T, body []byte)
	jsonIs := func(path string, want string) check {
		return func(t *testing.T, body []byte) {
			t.Helper()
			var v map[string]any
			if err := json.Unmarshal(body, &v); err != nil {
				t.Fatalf("%s: %v", body, err)
			}
			got, _ := json.Marshal(v[path])
			if string(got) != want {
				t.Errorf("%s = %s, want %s (%s)", path, got, want, body)
			}
		}
	}
	bodyIs := func(want string) check {
		return func(t *testing.T, body []byte) {
			t.Helper()
			if strings.TrimSpace(string(body)) != want {
				t.Errorf("body %s, want %s", body, want)
			}
		}
	}
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		check                    check
	}{
		{"search", "POST", "/rest/api/3/search/jql", `{"jql":"project = CP","fields":["summary"]}`, 200, jsonIs("issues", "[]")},
		{"bulkfetch", "POST", "/rest/api/3/issue/bulkfetch", `{"issueIdsOrKeys":["CP-1"]}`, 200, jsonIs("issues", "[]")},
		{"createmeta fields", "GET", "/rest/api/3/issue/createmeta/CP/issuetypes/10003", "", 200, jsonIs("values", "[]")},
		{"createmeta total", "GET", "/rest/api/3/issue/createmeta/CP/issuetypes/10003", "", 200, jsonIs("total", "0")},
		{"createmeta issue types", "GET", "/rest/api/3/issue/createmeta/CP/issuetypes", "", 200, jsonIs("issueTypes", "[]")},
		{"user search", "GET", "/rest/api/3/user/search?query=jira", "", 200, bodyIs("[]")},
		{"issue", "GET", "/rest/api/3/issue/CP-1", "", 404, nil},
		{"myself", "GET", "/rest/api/3/myself", "", 200, bodyIs("{}")},
		{"serverInfo", "GET", "/rest/api/3/serverInfo", "", 200, jsonIs("deploymentType", `"Cloud"`)},
		{"create", "POST", "/rest/api/3/issue", `{"fields":{}}`, 401, nil},
		{"fields", "GET", "/rest/api/3/field", "", 401, nil},
		{"user", "GET", "/rest/api/3/user?accountId=" + jirasandbox.BotAccountID, "", 401, nil},
		{"JSM request type", "GET", "/rest/servicedeskapi/servicedesk/4/requesttype/41/field", "", 401, func(t *testing.T, b []byte) { decodeJSMError(t, b) }},
	} {
		for _, cred := range []struct{ name, auth, login string }{
			{"wrong", basic(testEmail, "expired-token"), "AUTHENTICATED_FAILED"},
			{"missing", "", ""},
		} {
			t.Run(tc.name+"/"+cred.name, func(t *testing.T) {
				n := len(sb.Requests())
				code, h, body := rawCall(t, tc.method, url+tc.path, tc.body, cred.auth)
				if code != tc.status {
					t.Fatalf("status %d, want %d: %s", code, tc.status, body)
				}
				if h.Get("X-AAccountId") != "" || h.Get("X-Seraph-LoginReason") != cred.login {
					t.Errorf("X-AAccountId %q X-Seraph-LoginReason %q, want none and %q", h.Get("X-AAccountId"), h.Get("X-Seraph-LoginReason"), cred.login)
				}
				if tc.check != nil {
					tc.check(t, body)
				}
				if r := sb.Requests()[n]; r.Anonymous != (code != 401) {
					t.Errorf("logged Anonymous %v for status %d", r.Anonymous, code)
				}
			})
		}
	}

	// What a client sees: an empty myself with no error at all.
	me, res, err := v3Client(t, url).MySelf.Details(context.Background(), nil)
	if err != nil || me.AccountID == "" {
		t.Fatalf("right credentials: %+v %v", me, err)
	}
	me, res, err = v2Client(t, url, testEmail, "expired-token").MySelf.Details(context.Background(), nil)
	if err != nil || res.Code != 200 || me.AccountID != "" || res.Header.Get("X-Seraph-LoginReason") != "AUTHENTICATED_FAILED" {
		t.Errorf("anonymous myself: %+v %v %d", me, err, res.Code)
	}
	sb.Update(func(o *jirasandbox.Options) { o.AnonymousMyself401 = true })
	if code, _, _ := rawCall(t, http.MethodGet, url+"/rest/api/3/myself", "", basic(testEmail, "expired-token")); code != 401 {
		t.Errorf("AnonymousMyself401: %d", code)
	}
	sb.SetAnonymousFallback(false)
	if code, _, _ := rawCall(t, http.MethodPost, url+"/rest/api/3/search/jql", `{"jql":"project = CP"}`, basic(testEmail, "expired-token")); code != 401 {
		t.Errorf("fallback off: %d", code)
	}
}

// TestServerInfo: anonymous access is allowed, so no credentials is 200;
// wrong credentials are still 401 without the fallback.
func TestServerInfo(t *testing.T) {
	_, url := start(t, jirasandbox.Options{})
	info, res, err := v3Client(t, url).Server.Info(context.Background())
	if err != nil || info.DeploymentType != "Cloud" || info.BaseURL != url || res.Header.Get("X-AAccountId") != jirasandbox.BotAccountID {
		t.Errorf("authenticated: %+v %v", info, err)
	}
	for _, tc := range []struct {
		auth string
		want int
	}{{"", 200}, {basic(testEmail, "wrong"), 401}} {
		if code, h, _ := rawCall(t, http.MethodGet, url+"/rest/api/2/serverInfo", "", tc.auth); code != tc.want || h.Get("X-AAccountId") != "" {
			t.Errorf("auth %q: %d", tc.auth, code)
		}
	}
}

// TestJSMErrorShape: the Service Management API answers its errors, the
// middleware's included, as {errorMessage, i18nErrorMessage}.
func TestJSMErrorShape(t *testing.T) {
	sb, url := start(t, jirasandbox.Options{})
	path := url + "/rest/servicedeskapi/servicedesk/4/requesttype/41/field"
	for _, tc := range []struct {
		name  string
		setup func()
		url   string
		auth  string
		want  int
	}{
		{"401", func() {}, path, basic(testEmail, "wrong"), 401},
		{"403 auth failure", func() { sb.SetAuthFailure(403) }, path, basic(testEmail, testToken), 403},
		{"5xx", func() { sb.SetAuthFailure(0); sb.SetError5xxRate(1) }, path, basic(testEmail, testToken), 0},
		{"unknown path", func() { sb.SetError5xxRate(0) }, url + "/rest/servicedeskapi/nothing", basic(testEmail, testToken), 404},
		{"bad body", func() {}, url + "/rest/servicedeskapi/request", basic(testEmail, testToken), 400},
	} {
		tc.setup()
		method := http.MethodGet
		if strings.HasSuffix(tc.url, "/request") {
			method = http.MethodPost
		}
		code, _, body := rawCall(t, method, tc.url, "{not json", tc.auth)
		if (tc.want != 0 && code != tc.want) || (tc.want == 0 && code < 500) {
			t.Errorf("%s: status %d", tc.name, code)
		}
		decodeJSMError(t, body)
	}
}
