package console

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/audit"
	"github.com/cowjacket/formjira/internal/deadletters"
	"github.com/cowjacket/formjira/internal/replay"
	"github.com/cowjacket/formjira/internal/stats"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/trace"
	"github.com/cowjacket/formjira/internal/webauth"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Replayer re-drives dead letters (*ticketer.Replayer has it).
type Replayer interface {
	DeadLetters(ctx context.Context, st jetstream.Stream, entries []*deadletters.Entry) (replay.Result, []replay.Outcome, error)
	Close()
}

// Server is the console's handlers.
type Server struct {
	JS     jetstream.JetStream
	Auth   *webauth.Auth
	Tracer *trace.Tracer
	Audit  *audit.Log
	// NewReplayer builds a replayer for one action (fresh Jira metadata).
	NewReplayer func(ctx context.Context) (Replayer, error)
	JiraURL     string
	Log         *slog.Logger

	tmpl     *template.Template
	replayMu sync.Mutex // one replay at a time

	// The overview, read at most once per overviewMaxAge for every open
	// page and API client together (it reads days of records).
	overviewMu sync.Mutex
	lastView   *Overview
}

// overviewMaxAge is how old a shared overview may be: under the pages'
// 5-second refresh.
const overviewMaxAge = 4 * time.Second

// overview is the current overview, shared while young.
func (s *Server) overview(ctx context.Context) (*Overview, error) {
	s.overviewMu.Lock()
	defer s.overviewMu.Unlock()
	if s.lastView != nil && time.Since(s.lastView.At) < overviewMaxAge {
		return s.lastView, nil
	}
	o, err := overview(ctx, s.JS)
	if err != nil {
		return nil, err
	}
	s.lastView = o
	return o, nil
}

// Handler is the whole console.
func (s *Server) Handler() (http.Handler, error) {
	t, err := template.New("").Funcs(funcs(s.JiraURL)).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	s.tmpl = t
	s.Auth.Login = s.loginPage
	mux := http.NewServeMux()
	s.Auth.Routes(mux)
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })

	page := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, s.Auth.Pages(h)) }
	page("GET /{$}", s.overviewPage)
	page("GET /dlq", s.dlqPage)
	page("GET /dlq/{seq}", s.dlqEntryPage)
	page("POST /dlq/replay", s.replayPage)
	page("GET /trace", s.tracePage)
	page("GET /audit", s.auditPage)

	api := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, s.Auth.API(h)) }
	api("GET /api/status", s.apiStatus)
	api("GET /api/dlq", s.apiDLQ)
	api("GET /api/dlq/{seq}", s.apiDLQEntry)
	api("POST /api/dlq/{seq}/replay", s.apiReplay)
	api("GET /api/trace", s.apiTrace)
	api("GET /api/stats", s.apiStats)
	api("GET /api/audit", s.apiAudit)
	return secureHeaders(mux), nil
}

func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// view is what every page template gets.
type view struct {
	Title, Nav string
	User       *webauth.User
	CSRF       string
	Refresh    int // seconds; 0: the page does not update itself
	Data       any
	Error      string
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, v view) {
	v.User, v.CSRF = webauth.UserFrom(r.Context()), webauth.CSRFFrom(r.Context())
	tmpl := "page"
	if r.Header.Get("X-Fragment") == "1" {
		tmpl = name // only the content: the page updates itself in place
	}
	var b strings.Builder
	t, err := s.tmpl.Clone()
	if err == nil {
		_, err = t.New("content").Parse(`{{template "` + name + `" .}}`)
	}
	if err == nil {
		err = t.ExecuteTemplate(&b, tmpl, v)
	}
	if err != nil {
		s.Log.Error("console: render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request, status int, d webauth.LoginData) {
	s.render(w, r, status, "login", view{Title: "Sign in", Data: d, Error: d.Error})
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	s.Log.Error("console", "path", r.URL.Path, "err", err)
	s.render(w, r, http.StatusInternalServerError, "error", view{Title: "Error", Error: err.Error()})
}

func (s *Server) overviewPage(w http.ResponseWriter, r *http.Request) {
	o, err := s.overview(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "overview", view{Title: "Overview", Nav: "overview", Refresh: 5, Data: o})
}

func (s *Server) dlqStream(ctx context.Context) (jetstream.Stream, error) {
	return deadletters.Open(ctx, s.JS)
}

func (s *Server) dlqPage(w http.ResponseWriter, r *http.Request) {
	st, err := s.dlqStream(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	entries, err := deadletters.List(r.Context(), st)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "dlq", view{Title: "Dead letters", Nav: "dlq", Data: entries})
}

// entryView is one dead letter's full story.
type entryView struct {
	Entry  *deadletters.Entry
	Event  string // pretty JSON
	Ticket *stream.Record
	Trace  *trace.Journey
}

func (s *Server) entry(ctx context.Context, seq uint64) (*entryView, error) {
	st, err := s.dlqStream(ctx)
	if err != nil {
		return nil, err
	}
	e, err := deadletters.Get(ctx, st, seq)
	if err != nil || e == nil {
		return nil, err
	}
	v := &entryView{Entry: e, Event: prettyJSON(e.Data)}
	if t, err := stream.LookupTickets(ctx, s.JS); err == nil && e.Hash != "" {
		v.Ticket, _, _ = t.Get(ctx, e.Hash)
	}
	if e.Hash != "" && s.Tracer != nil {
		if res, err := s.Tracer.Find(ctx, e.Hash); err == nil && len(res.Journeys) == 1 {
			v.Trace = &res.Journeys[0]
		}
	}
	return v, nil
}

func (s *Server) dlqEntryPage(w http.ResponseWriter, r *http.Request) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	v, err := s.entry(r.Context(), seq)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if v == nil {
		s.render(w, r, http.StatusNotFound, "error", view{Title: "Not found", Nav: "dlq", Error: fmt.Sprintf("No dead letter %d in %s: replayed or removed.", seq, stream.DLQ)})
		return
	}
	s.render(w, r, http.StatusOK, "dlqentry", view{Title: fmt.Sprintf("Dead letter %d", seq), Nav: "dlq", Data: v})
}

// Report is what a replay did (the API's answer, the outcome page).
type Report struct {
	Replayed    int            `json:"replayed"`
	Created     int            `json:"created"`
	Skipped     int            `json:"skipped"`
	Failing     int            `json:"failing"`
	Missing     []uint64       `json:"missing,omitempty"`
	FromCapture []uint64       `json:"from_capture,omitempty"`
	Outcomes    []OutcomeEntry `json:"outcomes"`
	Error       string         `json:"error,omitempty"`
	AuditSeq    uint64         `json:"audit_seq"`
}

// OutcomeEntry is one dead letter's fate.
type OutcomeEntry struct {
	Seq    uint64 `json:"seq"`               // the entry replayed
	Status string `json:"status"`            // created, skipped, rejected, retry, auth_failed
	Key    string `json:"key,omitempty"`     // the ticket
	NowSeq uint64 `json:"now_seq,omitempty"` // the entry now holding the failure
	Line   string `json:"line"`
}

// replay re-drives the dead letters seqs (all: every one) for u and
// records it in FORMS_AUDIT.
func (s *Server) replay(ctx context.Context, r *http.Request, seqs []uint64, all bool) (*Report, error) {
	u := webauth.UserFrom(r.Context())
	s.replayMu.Lock()
	defer s.replayMu.Unlock()
	rep := &Report{Outcomes: []OutcomeEntry{}}
	target := "FORMS_DLQ (all)"
	if !all {
		parts := make([]string, len(seqs))
		for i, q := range seqs {
			parts[i] = strconv.FormatUint(q, 10)
		}
		target = "FORMS_DLQ " + strings.Join(parts, ", ")
	}
	// Who started what is on record before anything is replayed: a replay
	// cut short (shutdown, a crash) still leaves the start.
	start := audit.Entry{Who: u.Name, Role: u.Role, Via: u.Via, From: r.RemoteAddr, Action: "dlq.replay.start", Target: target}
	if _, err := s.Audit.Record(ctx, start); err != nil {
		s.Log.Error("console: replay not started: its audit entry could not be stored", "who", u.Name, "target", target, "err", err)
		return rep, fmt.Errorf("not replayed: the audit entry could not be stored: %w", err)
	}
	err := s.doReplay(ctx, seqs, all, rep)
	if err != nil {
		rep.Error = err.Error()
	}
	ae := audit.Entry{Who: u.Name, Role: u.Role, Via: u.Via, From: r.RemoteAddr, Action: "dlq.replay", Target: target,
		Created: rep.Created, Skipped: rep.Skipped, Failing: rep.Failing, Error: rep.Error}
	for _, o := range rep.Outcomes {
		ae.Outcome = append(ae.Outcome, o.Line)
	}
	for _, q := range rep.Missing {
		ae.Outcome = append(ae.Outcome, fmt.Sprintf("DLQ %d: no such dead letter", q))
	}
	seq, aerr := s.Audit.Record(ctx, ae)
	if aerr != nil {
		s.Log.Error("console: replay done but not audited", "who", u.Name, "target", target, "err", aerr)
		return rep, fmt.Errorf("replayed, but the audit entry could not be stored: %w", aerr)
	}
	rep.AuditSeq = seq
	s.Log.Info("console: replay", "who", u.Name, "target", target, "created", rep.Created, "skipped", rep.Skipped, "failing", rep.Failing, "audit_seq", seq)
	return rep, nil
}

func (s *Server) doReplay(ctx context.Context, seqs []uint64, all bool, rep *Report) error {
	st, err := s.dlqStream(ctx)
	if err != nil {
		return err
	}
	var entries []*deadletters.Entry
	if all {
		if entries, err = deadletters.List(ctx, st); err != nil {
			return err
		}
	} else {
		for _, q := range seqs {
			e, err := deadletters.Get(ctx, st, q)
			if err != nil {
				return err
			}
			if e == nil {
				rep.Missing = append(rep.Missing, q)
				continue
			}
			entries = append(entries, e)
		}
	}
	var ours []*deadletters.Entry
	for _, e := range entries {
		if e.FromCapture() {
			rep.FromCapture = append(rep.FromCapture, e.Seq)
			continue
		}
		ours = append(ours, e)
	}
	if len(ours) == 0 {
		return nil
	}
	rp, err := s.NewReplayer(ctx)
	if err != nil {
		return err
	}
	defer rp.Close()
	res, outs, err := rp.DeadLetters(ctx, st, ours)
	rep.Replayed, rep.Created, rep.Skipped, rep.Failing = res.Replayed, res.Created, res.Skipped, res.Failing
	for i, o := range outs {
		oe := OutcomeEntry{Seq: ours[i].Seq, Status: o.Status.String(), Key: o.Key, Line: o.Line}
		if o.DLQSeq != 0 && o.DLQSeq != ours[i].Seq {
			oe.NowSeq = o.DLQSeq
		}
		rep.Outcomes = append(rep.Outcomes, oe)
	}
	return err
}

func (s *Server) replayPage(w http.ResponseWriter, r *http.Request) {
	if !webauth.RequireOperator(w, r, false) {
		return
	}
	all := r.PostFormValue("all") == "1"
	var seqs []uint64
	picked := r.PostForm["seq"]
	if one := r.PostFormValue("one"); one != "" {
		picked, all = []string{one}, false // a row's own button: that row only
	}
	for _, v := range picked {
		if q, err := strconv.ParseUint(v, 10, 64); err == nil && q > 0 {
			seqs = append(seqs, q)
		}
	}
	if !all && len(seqs) == 0 {
		s.render(w, r, http.StatusBadRequest, "error", view{Title: "Nothing selected", Nav: "dlq", Error: "Select the dead letters to replay."})
		return
	}
	rep, err := s.replay(r.Context(), r, seqs, all)
	v := view{Title: "Replay", Nav: "dlq", Data: rep}
	if err != nil {
		v.Error = err.Error()
	}
	s.render(w, r, http.StatusOK, "replayed", v)
}

func (s *Server) tracePage(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.FormValue("q"))
	v := view{Title: "Trace", Nav: "trace"}
	data := struct {
		Q      string
		Result *trace.Result
	}{Q: q}
	if q != "" {
		res, err := s.Tracer.Find(r.Context(), q)
		if err != nil {
			v.Error = err.Error()
		}
		data.Result = res
	}
	v.Data = data
	s.render(w, r, http.StatusOK, "trace", v)
}

func (s *Server) auditPage(w http.ResponseWriter, r *http.Request) {
	entries, err := s.Audit.Latest(r.Context(), 200)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "audit", view{Title: "Audit", Nav: "audit", Refresh: 10, Data: entries})
}

// The JSON API.

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func (s *Server) apiFail(w http.ResponseWriter, r *http.Request, status int, err error) {
	if status >= 500 {
		s.Log.Error("console api", "path", r.URL.Path, "err", err)
	}
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

func (s *Server) apiStatus(w http.ResponseWriter, r *http.Request) {
	o, err := s.overview(r.Context())
	if err != nil {
		s.apiFail(w, r, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, o)
}

func (s *Server) apiDLQ(w http.ResponseWriter, r *http.Request) {
	st, err := s.dlqStream(r.Context())
	if err == nil {
		var entries []*deadletters.Entry
		if entries, err = deadletters.List(r.Context(), st); err == nil {
			if entries == nil {
				entries = []*deadletters.Entry{}
			}
			writeJSON(w, http.StatusOK, entries)
			return
		}
	}
	s.apiFail(w, r, http.StatusInternalServerError, err)
}

func (s *Server) apiDLQEntry(w http.ResponseWriter, r *http.Request) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil {
		s.apiFail(w, r, http.StatusBadRequest, errors.New("want a FORMS_DLQ sequence"))
		return
	}
	v, err := s.entry(r.Context(), seq)
	switch {
	case err != nil:
		s.apiFail(w, r, http.StatusInternalServerError, err)
	case v == nil:
		s.apiFail(w, r, http.StatusNotFound, fmt.Errorf("no dead letter %d in %s", seq, stream.DLQ))
	default:
		headers := map[string][]string(v.Entry.Header)
		writeJSON(w, http.StatusOK, struct {
			*deadletters.Entry
			Headers map[string][]string `json:"headers"`
			Event   json.RawMessage     `json:"event"`
			Ticket  *stream.Record      `json:"ticket_record"`
			Trace   *trace.Journey      `json:"trace,omitempty"`
		}{v.Entry, headers, rawJSON(v.Entry.Data), v.Ticket, v.Trace})
	}
}

func (s *Server) apiReplay(w http.ResponseWriter, r *http.Request) {
	if !webauth.RequireOperator(w, r, true) {
		return
	}
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		s.apiFail(w, r, http.StatusBadRequest, errors.New("want a FORMS_DLQ sequence"))
		return
	}
	rep, err := s.replay(r.Context(), r, []uint64{seq}, false)
	switch {
	case err != nil:
		rep.Error = err.Error()
		writeJSON(w, http.StatusInternalServerError, rep)
	case len(rep.Missing) > 0:
		writeJSON(w, http.StatusNotFound, rep)
	case len(rep.FromCapture) > 0:
		rep.Error = deadletters.CaptureSkipped(len(rep.FromCapture))
		writeJSON(w, http.StatusConflict, rep)
	case rep.Error != "":
		writeJSON(w, http.StatusBadGateway, rep)
	default:
		writeJSON(w, http.StatusOK, rep)
	}
}

func (s *Server) apiTrace(w http.ResponseWriter, r *http.Request) {
	res, err := s.Tracer.Find(r.Context(), r.FormValue("q"))
	switch {
	case errors.Is(err, trace.ErrEmpty):
		s.apiFail(w, r, http.StatusBadRequest, err)
	case err != nil:
		s.apiFail(w, r, http.StatusInternalServerError, err)
	default:
		writeJSON(w, http.StatusOK, res)
	}
}

func (s *Server) apiStats(w http.ResponseWriter, r *http.Request) {
	days := 7
	if v := r.FormValue("days"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 400 {
			s.apiFail(w, r, http.StatusBadRequest, errors.New("days must be 1..400"))
			return
		}
		days = n
	}
	now := time.Now().UTC()
	first := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, -(days - 1))
	out, err := stats.Read(r.Context(), s.JS, first, days)
	if err != nil {
		s.apiFail(w, r, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiAudit(w http.ResponseWriter, r *http.Request) {
	entries, err := s.Audit.Latest(r.Context(), 200)
	if err != nil {
		s.apiFail(w, r, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, entries)
}
