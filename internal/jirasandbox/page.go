package jirasandbox

import (
	"encoding/json"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
)

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="2">
<title>Jira sandbox: {{len .}} tickets</title>
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;color:#172b4d}
.issue{border:1px solid #dfe1e6;border-radius:4px;margin:0 0 1em;padding:.6em 1em}
h2{font-size:16px;margin:.2em 0}.meta{color:#5e6c84;font-size:12px}
table{border-collapse:collapse;margin-top:.4em}td{border-top:1px solid #f4f5f7;padding:2px 8px;vertical-align:top}
td.k{color:#5e6c84;white-space:nowrap}.label{background:#dfe1e6;border-radius:3px;padding:0 4px;margin-right:4px;font-size:12px}
</style></head><body>
<h1>Jira sandbox: {{len .}} tickets received</h1>
<p class="meta">Newest first; refreshes every 2 s. JSON at <a href="/sandbox/issues">/sandbox/issues</a>.</p>
{{range .}}<div class="issue">
<h2>{{.Key}} · {{.Summary}}</h2>
<div class="meta">created {{.Created}} via {{.API}}{{if .OnBehalfOf}} on behalf of {{.OnBehalfOf}}{{end}}
{{range .Labels}}<span class="label">{{.}}</span>{{end}}</div>
<table>{{range .Fields}}<tr><td class="k">{{.Name}}</td><td>{{.Value}}</td></tr>{{end}}</table>
</div>{{else}}<p>No tickets yet.</p>{{end}}
</body></html>`))

type pageField struct{ Name, Value string }

type pageIssue struct {
	Key, Summary, Created, API, OnBehalfOf string
	Labels                                 []string
	Fields                                 []pageField
}

func (s *Server) handlePage(w http.ResponseWriter, r *http.Request) {
	issues := s.Issues()
	s.cat.mu.RLock()
	names := map[string]string{}
	for _, f := range s.cat.meta {
		names[f.ID] = f.Name
	}
	s.cat.mu.RUnlock()
	view := make([]pageIssue, 0, len(issues))
	for _, is := range slices.Backward(issues) {
		p := pageIssue{
			Key: is.Key, Summary: is.Summary(), API: is.API, OnBehalfOf: is.RaisedOnBehalfOf,
			Created: is.Created.Format("2006-01-02 15:04:05.000 MST"), Labels: is.Labels,
		}
		for _, id := range slices.Sorted(maps.Keys(is.Fields)) {
			name := id
			if n, ok := names[id]; ok {
				name = n + " (" + id + ")"
			}
			p.Fields = append(p.Fields, pageField{Name: name, Value: displayValue(is.Fields[id])})
		}
		view = append(view, p)
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
			return adfText(t)
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
	Fields           map[string]any `json:"fields"`
}

// handleIssuesJSON lists created issues oldest first, like Issues().
func (s *Server) handleIssuesJSON(w http.ResponseWriter, r *http.Request) {
	out := []issueJSONView{}
	for _, is := range s.Issues() {
		out = append(out, issueJSONView{is.Key, is.ID, is.API, is.Created, is.Labels, is.RaisedOnBehalfOf, is.Fields})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleAddOption(w http.ResponseWriter, r *http.Request) {
	var in struct {
		FieldID string `json:"fieldId"`
		Value   string `json:"value"`
	}
	if !decodeBody(w, r, &in) {
		return
	}
	if err := s.AddOption(in.FieldID, in.Value); err != nil {
		writeErrors(w, http.StatusBadRequest, []string{err.Error()}, nil)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"fieldId": in.FieldID, "value": in.Value})
}

// sandboxConfig is the admin view of the live fault settings; durations are
// Go duration strings ("250ms").
type sandboxConfig struct {
	RatePerSecond     *float64 `json:"ratePerSecond,omitempty"`
	Burst             *int     `json:"burst,omitempty"`
	Error5xxRate      *float64 `json:"error5xxRate,omitempty"`
	CreatedBut500Rate *float64 `json:"createdBut500Rate,omitempty"`
	Latency           *string  `json:"latency,omitempty"`
	SearchDelay       *string  `json:"searchDelay,omitempty"`
	AuthFailure       *int     `json:"authFailure,omitempty"`
}

func (s *Server) handleConfig(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		var in sandboxConfig
		if !decodeBody(w, r, &in) {
			return
		}
		if err := s.applyConfig(in); err != nil {
			writeErrors(w, http.StatusBadRequest, []string{err.Error()}, nil)
			return
		}
	}
	s.mu.Lock()
	o, auth := s.opts, s.authFailure
	s.mu.Unlock()
	lat, delay := o.Latency.String(), o.SearchDelay.String()
	writeJSON(w, http.StatusOK, sandboxConfig{
		RatePerSecond: &o.RatePerSecond, Burst: &o.Burst, Error5xxRate: &o.Error5xxRate,
		CreatedBut500Rate: &o.CreatedBut500Rate, Latency: &lat, SearchDelay: &delay, AuthFailure: &auth,
	})
}

func (s *Server) applyConfig(in sandboxConfig) error {
	parse := func(name string, p *string) (time.Duration, error) {
		d, err := time.ParseDuration(*p)
		if err != nil || d < 0 {
			return 0, fmt.Errorf("%s: want a duration like 250ms, got %q", name, *p)
		}
		return d, nil
	}
	// Parse everything first so a bad request changes nothing.
	var lat, delay time.Duration
	var err error
	if in.Latency != nil {
		if lat, err = parse("latency", in.Latency); err != nil {
			return err
		}
	}
	if in.SearchDelay != nil {
		if delay, err = parse("searchDelay", in.SearchDelay); err != nil {
			return err
		}
	}
	if in.RatePerSecond != nil || in.Burst != nil {
		s.mu.Lock()
		perSec, burst := s.opts.RatePerSecond, s.opts.Burst
		s.mu.Unlock()
		if in.RatePerSecond != nil {
			perSec = *in.RatePerSecond
		}
		if in.Burst != nil {
			burst = *in.Burst
		}
		s.SetRate(perSec, burst)
	}
	if in.Error5xxRate != nil {
		s.SetError5xxRate(*in.Error5xxRate)
	}
	if in.CreatedBut500Rate != nil {
		s.SetCreatedBut500Rate(*in.CreatedBut500Rate)
	}
	if in.Latency != nil {
		s.SetLatency(lat)
	}
	if in.SearchDelay != nil {
		s.SetSearchDelay(delay)
	}
	if in.AuthFailure != nil {
		s.SetAuthFailure(*in.AuthFailure)
	}
	return nil
}

func (s *Server) handleReset(w http.ResponseWriter, r *http.Request) {
	s.Reset()
	w.WriteHeader(http.StatusNoContent)
}
