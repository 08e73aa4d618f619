package jirasandbox_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctreminiom/go-atlassian/v2/pkg/infra/models"

	"github.com/cowjacket/formjira/internal/jirasandbox"
)

// TestConfigEndpoint: POST /sandbox/config sets the new switches at
// runtime, refuses a bad value without changing anything, and GET shows
// the live settings.
func TestConfigEndpoint(t *testing.T) {
	sb, url := start(t, jirasandbox.Options{})
	post := func(body string) (map[string]any, int) {
		t.Helper()
		b, code := httpDo(t, http.MethodPost, url+"/sandbox/config", body, nil)
		var cfg map[string]any
		_ = json.Unmarshal(b, &cfg)
		return cfg, code
	}
	cfg, code := post(`{"shuffleBulk":true,"searchDelay":"150s","rateLimitHeaders":"reset","rateLimitResetLayout":"minutes",
		"strictCustomers":true,"deskAccess":"restricted","denyCreate":"403","createMetaList":"fields","createMetaPageSize":5,
		"outage":"503","outageRetryAfter":"30s","bulkReject400Count":2,"hideEmails":true,"anonymousFallback":true,
		"endpointRates":{"GET /rest/api/3/myself":{"perSecond":0.5,"burst":1}},"tenantRatePerSecond":100,"tenantBurst":100}`)
	if code != 200 {
		t.Fatalf("config: %d %v", code, cfg)
	}
	for k, want := range map[string]any{
		"shuffleBulk": true, "searchDelay": "2m30s", "rateLimitHeaders": "reset", "rateLimitResetLayout": jirasandbox.ResetLayoutMinutes,
		"strictCustomers": true, "deskAccess": "restricted", "denyCreate": "403", "createMetaList": "fields", "createMetaPageSize": 5.0,
		"outage": "503", "outageRetryAfter": "30s", "bulkReject400Count": 2.0, "hideEmails": true, "anonymousFallback": true, "tenantBurst": 100.0,
	} {
		if cfg[k] != want {
			t.Errorf("%s = %#v, want %#v", k, cfg[k], want)
		}
	}
	if code, h, _ := rawCall(t, http.MethodGet, url+"/rest/api/3/myself", "", basic(testEmail, testToken)); code != 503 || h.Get("Retry-After") != "30" {
		t.Errorf("outage through config: %d %v", code, h)
	}
	for _, bad := range []string{`{"outage":"down"}`, `{"deskAccess":"closed","shuffleBulk":false}`, `{"searchDelay":"soon"}`,
		`{"rateLimitHeaders":"x-ratelimit"}`, `{"denyCreate":"401"}`, `{"notCustomerStatus":404}`, `{"authFailure":500}`} {
		if _, code := post(bad); code != 400 {
			t.Errorf("%s: %d, want 400", bad, code)
		}
	}
	cfg, _ = post(`{}`)
	if cfg["shuffleBulk"] != true || cfg["outage"] != "503" {
		t.Errorf("a refused config changed something: %v", cfg)
	}
	post(`{"outage":"","denyCreate":"","anonymousFallback":false}`)
	if code, h, _ := rawCall(t, http.MethodGet, url+"/rest/api/3/myself", "", basic(testEmail, testToken)); code != 200 || h.Get("X-AAccountId") == "" {
		t.Errorf("after the outage: %d", code)
	}
	// Update never changes what only New reads.
	sb.Update(func(o *jirasandbox.Options) { o.APIToken = "other"; o.KeyPrefix = "XX" })
	if code, _, _ := rawCall(t, http.MethodGet, url+"/rest/api/2/serverInfo", "", basic(testEmail, testToken)); code != 200 {
		t.Errorf("Update changed the credentials: %d", code)
	}
}

// TestCustomersSurviveRestart: StateFile keeps customers, their desks and
// the records of the issues' request type and reporter.
func TestCustomersSurviveRestart(t *testing.T) {
	row := sara(t)
	state := filepath.Join(t.TempDir(), "sandbox.json")
	sb, url := start(t, jirasandbox.Options{StateFile: state})
	id := sb.AddCustomer(row.EmailAddress, "Sara Curtis")
	if err := sb.AddToServiceDesk(id); err != nil {
		t.Fatal(err)
	}
	f := row.rawFields(false)
	f[jirasandbox.RequestTypeField] = "41"
	f["reporter"] = map[string]any{"id": id}
	if _, res, err := v2Client(t, url, testEmail, testToken).Issue.Create(context.Background(), &models.IssueSchemeV2{}, rawCustomFields(t, f)); err != nil {
		t.Fatalf("%v %s", err, res.Bytes.String())
	}
	created, _, _ := smClient(t, url).Customer.Create(context.Background(), "new@example.com", "New Person")

	sb2, url2 := start(t, jirasandbox.Options{StateFile: state})
	accts := sb2.Customers()
	if len(accts) != 3 || accts[1].AccountID != id || !accts[1].OnDesk("4") || accts[2].AccountID != created.AccountID {
		t.Fatalf("restored accounts %+v", accts)
	}
	if is := sb2.Issues(); len(is) != 1 || is[0].Reporter != id || is[0].RequestTypeID != "41" {
		t.Fatalf("restored issues %+v", is)
	}
	// Ids keep being unique after a restart.
	again, _, err := smClient(t, url2).Customer.Create(context.Background(), "newer@example.com", "Newer")
	if err != nil || again.AccountID == created.AccountID || again.AccountID == id {
		t.Errorf("after restart: %+v %v", again, err)
	}
	page, _ := httpDo(t, http.MethodGet, url2+"/sandbox/", "", nil)
	for _, want := range []string{"Accounts (4)", "newer@example.com", id, "Jira Sandbox"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("page lacks %q", want)
		}
	}
	body, _ := httpDo(t, http.MethodGet, url2+"/sandbox/customers", "", nil)
	var list []jirasandbox.Account
	if err := json.Unmarshal(body, &list); err != nil || len(list) != 4 || list[1].Email != row.EmailAddress {
		t.Errorf("/sandbox/customers = %s", body)
	}
	if b, code := httpDo(t, http.MethodPost, url2+"/sandbox/customers", `{"email":"admin-made@example.com","displayName":"Admin Made","serviceDesk":true}`, nil); code != 200 || !strings.Contains(string(b), `"serviceDesks":["4"]`) {
		t.Errorf("admin add customer: %d %s", code, b)
	}
}
