package jirasandbox

import (
	"encoding/json"
	"html/template"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cowjacket/formjira/internal/jirasandbox/catalog"
	"github.com/cowjacket/formjira/internal/jirasandbox/wire"
)

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="2">
<title>Jira sandbox: {{len .Issues}} tickets</title>
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;color:#172b4d}
.issue{border:1px solid #dfe1e6;border-radius:4px;margin:0 0 1em;padding:.6em 1em}
h2{font-size:16px;margin:.2em 0}.meta{color:#5e6c84;font-size:12px}
table{border-collapse:collapse;margin-top:.4em}td,th{border-top:1px solid #f4f5f7;padding:2px 8px;vertical-align:top;text-align:left}
td.k{color:#5e6c84;white-space:nowrap}.label{background:#dfe1e6;border-radius:3px;padding:0 4px;margin-right:4px;font-size:12px}
.warn{color:#bf2600}
</style></head><body>
<h1>Jira sandbox: {{len .Issues}} tickets received</h1>
<p class="meta">Newest first; refreshes every 2 s. JSON at <a href="/sandbox/issues">/sandbox/issues</a> and <a href="/sandbox/customers">/sandbox/customers</a>.</p>
{{range .Issues}}<div class="issue">
<h2>{{.Key}} · {{.Summary}}</h2>
<div class="meta">created {{.Created}} via {{.API}}{{if .OnBehalfOf}} on behalf of {{.OnBehalfOf}}{{end}}
{{range .Labels}}<span class="label">{{.}}</span>{{end}}</div>
<div class="meta">request type: {{if .RequestType}}{{.RequestType}}{{else}}<span class="warn">none: not a customer request (hidden from the customer portal)</span>{{end}} · reporter: {{.Reporter}}</div>
<table>{{range .Fields}}<tr><td class="k">{{.Name}}</td><td>{{.Value}}</td></tr>{{end}}</table>
</div>{{else}}<p>No tickets yet.</p>{{end}}
<h2>Accounts ({{len .Accounts}})</h2>
<table><tr><th>accountId</th><th>e-mail</th><th>name</th><th>type</th><th>customer of desk</th></tr>
{{range .Accounts}}<tr><td>{{.AccountID}}</td><td>{{.Email}}</td><td>{{.DisplayName}}</td><td>{{.AccountType}}</td><td>{{range .ServiceDesks}}{{.}} {{end}}</td></tr>{{end}}
</table>
</body></html>`))

type pageField struct{ Name, Value string }

type pageIssue struct {
	Key, Summary, Created, API, OnBehalfOf, RequestType, Reporter string
	Labels                                                        []string
	Fields                                                        []pageField
}

func (s *Server) handlePage(w http.ResponseWriter, r *http.Request) {
	issues := s.Issues()
	accounts := s.Customers()
	names := s.cat.FieldNames()
	people := map[string]string{}
	for _, a := range accounts {
		people[a.AccountID] = a.DisplayName + " <" + a.Email + ">"
	}
	view := struct {
		Issues   []pageIssue
		Accounts []Account
	}{Accounts: accounts}
	for _, is := range slices.Backward(issues) {
		p := pageIssue{
			Key: is.Key, Summary: is.Summary(), API: is.API, OnBehalfOf: is.RaisedOnBehalfOf,
			Created: is.Created.Format("2006-01-02 15:04:05.000 MST"), Labels: is.Labels, Reporter: is.Reporter,
		}
		if n, ok := people[is.Reporter]; ok {
			p.Reporter = n
		}
		if is.RequestTypeID != "" {
			p.RequestType = is.RequestTypeID
			if is.RequestTypeID == catalog.RequestTypeID {
				p.RequestType += " (" + catalog.RequestTypeName + ")"
			}
		}
		for _, id := range slices.Sorted(maps.Keys(is.Fields)) {
			name := id
			if n, ok := names[id]; ok {
				name = n + " (" + id + ")"
			}
			p.Fields = append(p.Fields, pageField{Name: name, Value: displayValue(is.Fields[id])})
		}
		view.Issues = append(view.Issues, p)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pageTmpl.Execute(w, view); err != nil {
		s.log.Error("jira sandbox page", "err", err)
	}
}

// displayValue shows a field value the way a person reads it in Jira.
func displayValue(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case []any:
		parts := make([]string, len(t))
		for i, e := range t {
			parts[i] = displayValue(e)
		}
		return strings.Join(parts, "; ")
	case map[string]any:
		if t["type"] == "doc" {
			return catalog.ADFText(t)
		}
		for _, k := range []string{"value", "key", "name", "accountId", "id"} {
			if s, ok := t[k].(string); ok {
				return s
			}
		}
	}
	b, _ := json.Marshal(v)
	return string(b)
}

type issueJSONView struct {
	Key              string         `json:"key"`
	ID               string         `json:"id"`
	API              string         `json:"api"`
	Created          time.Time      `json:"created"`
	Labels           []string       `json:"labels"`
	RaisedOnBehalfOf string         `json:"raisedOnBehalfOf,omitempty"`
	RequestTypeID    string         `json:"requestTypeId"`
	Reporter         string         `json:"reporter"`
	Fields           map[string]any `json:"fields"`
}

// handleIssuesJSON lists created issues oldest first, like Issues().
func (s *Server) handleIssuesJSON(w http.ResponseWriter, r *http.Request) {
	out := []issueJSONView{}
	for _, is := range s.Issues() {
		out = append(out, issueJSONView{is.Key, is.ID, is.API, is.Created, is.Labels, is.RaisedOnBehalfOf, is.RequestTypeID, is.Reporter, is.Fields})
	}
	wire.JSON(w, http.StatusOK, out)
}

// handleCustomersJSON lists every account, like Customers().
func (s *Server) handleCustomersJSON(w http.ResponseWriter, r *http.Request) {
	wire.JSON(w, http.StatusOK, s.Customers())
}

// handleAddCustomer is the admin's way to create an account:
// {"email","displayName","serviceDesk":true}.
func (s *Server) handleAddCustomer(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Email       string `json:"email"`
		DisplayName string `json:"displayName"`
		ServiceDesk bool   `json:"serviceDesk"`
	}
	if !wire.Decode(w, r, &in) {
		return
	}
	if in.Email == "" {
		wire.Errors(w, http.StatusBadRequest, []string{"email is required"}, nil)
		return
	}
	id := s.AddCustomer(in.Email, in.DisplayName)
	if in.ServiceDesk {
		_ = s.AddToServiceDesk(id)
	}
	a, _ := s.dir.Get(id)
	wire.JSON(w, http.StatusOK, a)
}

func (s *Server) handleAddOption(w http.ResponseWriter, r *http.Request) {
	var in struct {
		FieldID string `json:"fieldId"`
		Value   string `json:"value"`
	}
	if !wire.Decode(w, r, &in) {
		return
	}
	if err := s.AddOption(in.FieldID, in.Value); err != nil {
		wire.Errors(w, http.StatusBadRequest, []string{err.Error()}, nil)
		return
	}
	wire.JSON(w, http.StatusOK, map[string]any{"fieldId": in.FieldID, "value": in.Value})
}

func (s *Server) handleReset(w http.ResponseWriter, r *http.Request) {
	s.Reset()
	w.WriteHeader(http.StatusNoContent)
}
