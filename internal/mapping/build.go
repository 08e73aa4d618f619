package mapping

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"
	"unicode"

	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/ticket"
	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

// JiraDateTime is the layout Jira documents for datetime fields.
const JiraDateTime = "2006-01-02T15:04:05.000-0700"

// templateData is what templates see besides col: {{.Hash}}, {{.HashLabel}}.
type templateData struct {
	Hash      string
	HashLabel string
}

// Build maps one event to the request that creates its ticket. meta is what
// Jira says the target accepts (nil skips the checks that need it: allowed
// values, field names, Jira-required fields). Every problem of the row is
// returned at once as a *RowError wrapping ErrUnmappable.
func (m *Mapping) Build(ev *formsv1.FormSubmission, meta *ticket.Meta) (*ticket.Request, error) {
	if ev == nil {
		return nil, fmt.Errorf("%w: no event", ErrUnmappable)
	}
	b := &builder{m: m, ev: ev, meta: meta, values: map[string]any{}}
	hashLabel := ticket.HashLabel(ev.GetHash())
	if ev.GetHash() == "" {
		b.problem("labels", "", "the event has no record hash, so the ticket could not be found again")
	}

	b.summary()
	b.description()
	mapped := map[string]bool{"summary": true, "project": true, "issuetype": true}
	if m.description != nil {
		mapped["description"] = true
	}
	labels := slices.Clone(m.labels)
	for _, spec := range m.fields {
		mapped[spec.Field] = true
		v, ok := b.field(spec)
		if !ok {
			continue
		}
		if spec.Field == "labels" {
			labels = appendNew(labels, v.([]string)...)
			continue
		}
		b.values[spec.Field] = v
	}
	for _, id := range m.fixedOrder {
		mapped[id] = true
		b.values[id] = m.fixed[id]
	}
	labels = appendNew(labels, hashLabel)
	mapped["labels"] = true
	// Filled below or by the requester's account, not by fields.
	if m.mode == ModePlatform && m.requestType != "" {
		mapped[b.requestTypeField()] = true
	}
	if m.reporter {
		mapped["reporter"] = true
	}

	// A field Jira requires that the mapping never fills would be refused
	// after an issue key is burned: name it now.
	if meta != nil {
		var missing []string
		for id, fm := range meta.Fields {
			if fm.Required && !fm.HasDefault && !mapped[id] {
				missing = append(missing, id)
			}
		}
		sort.Strings(missing)
		for _, id := range missing {
			b.problem(id, "", "required by Jira but not mapped (add it to the mapping's fields)")
		}
	}

	req := &ticket.Request{Hash: ev.GetHash(), HashLabel: hashLabel, Labels: labels}
	switch m.mode {
	case ModeJSM:
		req.ServiceDeskID, req.RequestTypeID = m.serviceDeskID, m.requestTypeID
		if _, ok := meta.Field("labels"); ok {
			b.values["labels"] = req.Labels
		} else {
			req.LabelsPending = true
			b.carryHash()
		}
		req.RequestFieldValues = b.values
	default:
		b.values["project"] = map[string]any{"key": m.project}
		b.values["issuetype"] = map[string]any{"id": m.issueType}
		b.values["labels"] = req.Labels
		if m.requestType != "" {
			b.values[b.requestTypeField()] = m.requestType
		}
		req.Fields = b.values
		req.ReporterIsRequester = m.reporter
	}
	if m.requester.email != "" {
		req.Requester = b.requester()
		req.AsBotWithoutAccount = m.asBot
	}
	if len(b.problems) > 0 {
		return nil, &RowError{Hash: ev.GetHash(), Problems: b.problems}
	}
	return req, nil
}

type builder struct {
	m        *Mapping
	ev       *formsv1.FormSubmission
	meta     *ticket.Meta
	values   map[string]any
	problems []FieldError
}

func (b *builder) problem(fieldID, column, format string, args ...any) {
	name := fieldID
	if fm, ok := b.meta.Field(fieldID); ok && fm.Name != "" {
		name = fm.Name
	} else if n, ok := systemNames[fieldID]; ok {
		name = n
	}
	b.problems = append(b.problems, FieldError{FieldID: fieldID, FieldName: name, Column: column, Message: fmt.Sprintf(format, args...)})
}

var systemNames = map[string]string{"summary": "Summary", "description": "Description", "labels": "Labels"}

// render executes a template with col bound to this event; escape is applied
// to every column value (not to the template's own text, which is the
// operator's and may use markup on purpose).
func (b *builder) render(t *template.Template, escape func(string) string) (string, error) {
	t, err := t.Clone()
	if err != nil {
		return "", err
	}
	t.Funcs(template.FuncMap{"col": func(name string) (string, error) {
		v := form.Lookup(b.ev, name)
		if v == nil {
			return "", fmt.Errorf("column %q is not in the event", name)
		}
		s, _ := form.Canonical(v)
		return escape(strings.TrimSpace(cleanText(s))), nil
	}})
	var sb strings.Builder
	data := templateData{Hash: b.ev.GetHash(), HashLabel: ticket.HashLabel(b.ev.GetHash())}
	if err := t.Execute(&sb, data); err != nil {
		return "", errors.New(templateError(err))
	}
	return sb.String(), nil
}

// templateError keeps the cause of an execution error, dropping
// text/template's position prefix.
func templateError(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": error calling col: "); i >= 0 {
		return msg[i+len(": error calling col: "):]
	}
	return strings.TrimPrefix(msg, "template: ")
}

func (b *builder) summary() {
	s, err := b.render(b.m.summary, func(s string) string { return s })
	if err != nil {
		b.problem("summary", "", "template: %s", err)
		return
	}
	// Jira refuses a summary with a newline or over 255 characters; the
	// summary is ours to shape, so it is folded and shortened, not refused.
	s = truncate(singleLine(s), maxSummary)
	if s == "" {
		b.problem("summary", "", "the summary template produced an empty summary")
		return
	}
	b.values["summary"] = s
}

func (b *builder) description() {
	if b.m.description == nil {
		return
	}
	escape := escapeWiki
	if b.m.adf() {
		escape = func(s string) string { return s }
	}
	s, err := b.render(b.m.description, escape)
	if err != nil {
		b.problem("description", "", "template: %s", err)
		return
	}
	s = multiLine(s)
	if n := jiraLen(s); n > maxTextarea {
		b.problem("description", "", "is %d characters; Jira allows at most %d", n, maxTextarea)
		return
	}
	if s == "" {
		return
	}
	if b.m.adf() {
		b.values["description"] = adfDoc(s)
	} else {
		b.values["description"] = s
	}
}

// hashLine is how a request without labels carries its record hash.
const hashLine = "Record hash: "

// carryHash makes sure a JSM request that cannot carry the hash label at
// creation carries the record hash verbatim in its description: the create
// itself then holds what reconciliation searches for (text ~ "\"<hash>\"")
// when its outcome is unknown. A description template that does not show
// {{.Hash}} gets a "Record hash: <hash>" line appended.
func (b *builder) carryHash() {
	h := b.ev.GetHash()
	if h == "" || slices.ContainsFunc(b.problems, func(p FieldError) bool { return p.FieldID == "description" }) {
		return
	}
	d, _ := b.values["description"].(string)
	if strings.Contains(strings.ToLower(d), strings.ToLower(h)) {
		return
	}
	if b.meta != nil {
		if _, ok := b.meta.Field("description"); !ok {
			b.problem("description", "", "the request type has neither a labels nor a description field, so the record hash cannot travel with the request (ticketer finds a request whose create had an unknown outcome by it)")
			return
		}
	}
	if d != "" {
		d += "\n\n"
	}
	d += hashLine + h
	if n := jiraLen(d); n > maxTextarea {
		b.problem("description", "", "is %d characters with the record hash line; Jira allows at most %d", n, maxTextarea)
		return
	}
	b.values["description"] = d
}

// requester is the person the request is for. Jira wants their account,
// found or created from the e-mail, so a malformed address is caught here.
func (b *builder) requester() *ticket.Person {
	col := b.m.requester.email
	v := form.Lookup(b.ev, col)
	if v == nil {
		b.problems = append(b.problems, FieldError{FieldID: "requester", FieldName: "requester e-mail", Column: col, Message: "column is not in the event"})
		return nil
	}
	s, _ := form.Canonical(v)
	s = singleLine(s)
	if strings.Count(s, "@") != 1 || strings.ContainsAny(s, " ,;<>") || strings.HasPrefix(s, "@") || strings.HasSuffix(s, "@") {
		b.problems = append(b.problems, FieldError{FieldID: "requester", FieldName: "requester e-mail", Column: col, Message: fmt.Sprintf("%q is not an e-mail address", s)})
		return nil
	}
	p := &ticket.Person{Email: s, Name: s}
	if c := b.m.requester.name; c != "" {
		if nv := form.Lookup(b.ev, c); nv != nil {
			if n, _ := form.Canonical(nv); singleLine(n) != "" {
				p.Name = singleLine(n)
			}
		}
	}
	return p
}

// requestTypeField is the target's Customer Request Type field: by its
// type in Jira's metadata (customfield_10010 on Jira Cloud).
func (b *builder) requestTypeField() string {
	if id := b.meta.RequestTypeField(); id != "" {
		return id
	}
	return "customfield_10010"
}

// field converts one column; ok is false when nothing is to be sent (empty
// value, or a problem was recorded).
func (b *builder) field(spec fieldSpec) (any, bool) {
	fm, inMeta := b.meta.Field(spec.Field)
	if b.meta != nil && !inMeta {
		b.problem(spec.Field, spec.Column, "not a field of the target's create screen (unknown id, or not on the screen; run ticketer check)")
		return nil, false
	}
	col := form.LookupColumn(b.ev, spec.Column)
	v := col.GetValue()
	if v == nil {
		b.problem(spec.Field, spec.Column, "column is not in the event (misspelt? column names are case-sensitive)")
		return nil, false
	}
	raw, notNull := form.Canonical(v)
	required := spec.Required || (fm.Required && !fm.HasDefault)

	out, empty, msg := b.convert(spec, fm, v, raw, col.GetPgType())
	switch {
	case msg != "":
		b.problem(spec.Field, spec.Column, "%s", msg)
		return nil, false
	case empty && required:
		what := "empty"
		if !notNull {
			what = "NULL"
		}
		b.problem(spec.Field, spec.Column, "required, but the column is %s", what)
		return nil, false
	case empty:
		return nil, false
	}
	return out, true
}

// convert turns a column value into the JSON Jira takes for spec.Type.
// pgType tells a wall clock (timestamp without time zone) from an instant.
func (b *builder) convert(spec fieldSpec, fm ticket.FieldMeta, v *formsv1.Value, raw, pgType string) (out any, empty bool, msg string) {
	jsm := b.m.mode == ModeJSM
	wiki := !b.m.adf()
	switch spec.Type {
	case typeText:
		s := singleLine(raw)
		if s == "" {
			return nil, true, ""
		}
		sent := s
		if wiki && spec.Escape {
			sent = escapeWiki(s)
		}
		if n := jiraLen(sent); n > maxText {
			if n != jiraLen(s) {
				return nil, false, fmt.Sprintf("is %d characters once wiki markup is escaped (%d as typed); Jira allows at most %d", n, jiraLen(s), maxText)
			}
			return nil, false, fmt.Sprintf("is %d characters; Jira allows at most %d", n, maxText)
		}
		return sent, false, ""

	case typeTextarea:
		s := multiLine(raw)
		if s == "" {
			return nil, true, ""
		}
		if !wiki {
			if n := jiraLen(s); n > maxTextarea {
				return nil, false, fmt.Sprintf("is %d characters; Jira allows at most %d", n, maxTextarea)
			}
			return adfDoc(s), false, ""
		}
		sent := escapeWiki(s)
		if n := jiraLen(sent); n > maxTextarea {
			return nil, false, fmt.Sprintf("is %d characters once wiki markup is escaped; Jira allows at most %d", n, maxTextarea)
		}
		return sent, false, ""

	case typeNumber:
		s := strings.TrimSpace(raw)
		if s == "" {
			return nil, true, ""
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, false, fmt.Sprintf("%q is not a number", s)
		}
		// The column's own digits when they are a JSON number (a float64
		// would round 9007199254740993); otherwise Go's shortest form.
		if jsonNumber.MatchString(s) {
			return json.Number(s), false, ""
		}
		return json.Number(strconv.FormatFloat(f, 'f', -1, 64)), false, ""

	case typeSelect, typeRadio:
		s := singleLine(raw)
		if s == "" {
			return nil, true, ""
		}
		o, ok := matchOption(fm.Allowed, s, b.meta != nil)
		if !ok {
			return nil, false, fmt.Sprintf("%q is not an allowed value (allowed: %s)", s, allowedList(fm.Allowed))
		}
		return optionValue(o, jsm), false, ""

	case typeCheckboxes, typeMultiselect:
		items := splitItems(raw, spec.Separator)
		if len(items) == 0 {
			return nil, true, ""
		}
		var bad []string
		out := make([]any, 0, len(items))
		seen := map[string]bool{}
		for _, it := range items {
			o, ok := matchOption(fm.Allowed, it, b.meta != nil)
			if !ok {
				bad = append(bad, strconv.Quote(it))
				continue
			}
			if key := o.ID + "\x00" + o.Value; !seen[key] {
				seen[key] = true
				out = append(out, optionValue(o, jsm))
			}
		}
		if len(bad) == 1 {
			return nil, false, fmt.Sprintf("%s is not an allowed value (allowed: %s)", bad[0], allowedList(fm.Allowed))
		}
		if len(bad) > 1 {
			return nil, false, fmt.Sprintf("%s are not allowed values (allowed: %s)", strings.Join(bad, ", "), allowedList(fm.Allowed))
		}
		return out, false, ""

	case typeDate:
		s := strings.TrimSpace(raw)
		if s == "" {
			return nil, true, ""
		}
		if ts, ok := v.Kind.(*formsv1.Value_Timestamp); ok {
			return instant(ts, pgType, spec.Zone).Format(time.DateOnly), false, ""
		}
		d, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return nil, false, fmt.Sprintf("%q is not a date (want YYYY-MM-DD)", s)
		}
		return d.Format(time.DateOnly), false, ""

	case typeDatetime:
		s := strings.TrimSpace(raw)
		if s == "" {
			return nil, true, ""
		}
		var t time.Time
		ok := false
		if ts, isTS := v.Kind.(*formsv1.Value_Timestamp); isTS {
			t, ok = instant(ts, pgType, spec.Zone), true
		} else {
			t, ok = parseDateTime(s, spec.Zone)
		}
		if !ok {
			return nil, false, fmt.Sprintf("%q is not a date and time (want e.g. 2025-10-28T09:30:00Z)", s)
		}
		return t.Format(JiraDateTime), false, ""

	case typeLabels:
		var out []string
		for _, it := range splitItems(raw, spec.Separator) {
			// A label is one word: inner spaces would make Jira refuse it.
			l := strings.Join(strings.Fields(it), "-")
			if jiraLen(l) > maxText {
				return nil, false, fmt.Sprintf("label %q is longer than %d characters", truncate(l, 40), maxText)
			}
			out = appendNew(out, l)
		}
		if len(out) == 0 {
			return nil, true, ""
		}
		return out, false, ""

	case typeUser:
		s := strings.TrimSpace(raw)
		if s == "" {
			return nil, true, ""
		}
		if strings.IndexFunc(s, unicode.IsSpace) >= 0 {
			return nil, false, fmt.Sprintf("%q is not an account id", s)
		}
		if strings.Contains(s, "@") {
			// Jira Cloud takes accountIds only (GDPR): an e-mail is refused
			// at every create.
			return nil, false, fmt.Sprintf("%q is an e-mail address, not an account id (Jira Cloud takes accountIds: map the e-mail as requester instead)", s)
		}
		return map[string]any{"accountId": s}, false, ""
	}
	return nil, false, fmt.Sprintf("type %q is not supported", spec.Type)
}

// jsonNumber is JSON's number grammar (RFC 8259 §6).
var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$`)

// instant is a timestamp value in zone (UTC when nil). A timestamp without
// time zone is a wall clock (capture carries it as if in UTC), so it is
// read as that wall clock in zone; a timestamptz is an instant, shown there.
// A wall clock a summer-time change skips or repeats is read in one of the
// two offsets around the change, as time.Date reads it.
func instant(ts *formsv1.Value_Timestamp, pgType string, zone *time.Location) time.Time {
	t := ts.Timestamp.AsTime().UTC()
	switch {
	case zone == nil:
		return t
	case pgType == form.PgTimestamp:
		return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), zone)
	}
	return t.In(zone)
}

// parseDateTime accepts RFC 3339 (what a timestamp column carries), Jira's
// own layout, PostgreSQL's text form and a bare date (midnight); no zone
// in the text means zone (UTC when nil), and the time is shown there.
func parseDateTime(s string, zone *time.Location) (time.Time, bool) {
	if zone == nil {
		zone = time.UTC
	}
	// PostgreSQL writes a whole-hour offset as +02 (and fractions only
	// when there are any); an HTML datetime-local input sends 2025-10-28T09:30.
	for _, layout := range []string{time.RFC3339Nano, JiraDateTime, "2006-01-02T15:04:05-0700",
		"2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999Z07", "2006-01-02 15:04:05.999999999",
		"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04", time.DateOnly} {
		if t, err := time.ParseInLocation(layout, s, zone); err == nil {
			return t.In(zone), true
		}
	}
	return time.Time{}, false
}

// splitItems splits a multi-value column at sep (its spaces ignored, so
// "a;b" and "a ; b" split like "a; b"), trims the items and drops empty
// ones. A separator of only spaces splits at any white space.
func splitItems(raw, sep string) []string {
	raw = cleanText(raw)
	var parts []string
	if s := strings.TrimSpace(sep); s != "" {
		parts = strings.Split(raw, s)
	} else {
		parts = strings.Fields(raw)
	}
	items := parts[:0]
	for _, p := range parts {
		if p = singleLine(p); p != "" {
			items = append(items, p)
		}
	}
	return items
}

// matchOption finds the allowed option a person meant: exact first, then
// ignoring case and spacing. Without meta (known false) the value is taken
// as typed and Jira judges it.
func matchOption(allowed []ticket.Option, s string, known bool) (ticket.Option, bool) {
	if !known {
		return ticket.Option{Value: s}, true
	}
	for _, o := range allowed {
		if o.Value == s {
			return o, true
		}
	}
	for _, o := range allowed {
		if strings.EqualFold(singleLine(o.Value), s) {
			return o, true
		}
	}
	return ticket.Option{}, false
}

// optionValue is an option as Jira takes it: by value on the platform API
// (readable in logs and the dead-letter), by id on the JSM API, whose
// request type lists options by id.
func optionValue(o ticket.Option, jsm bool) map[string]any {
	if jsm && o.ID != "" {
		return map[string]any{"id": o.ID}
	}
	return map[string]any{"value": o.Value}
}

func allowedList(allowed []ticket.Option) string {
	const show = 12
	names := make([]string, 0, min(len(allowed), show)+1)
	for i, o := range allowed {
		if i == show {
			names = append(names, fmt.Sprintf("… %d more", len(allowed)-show))
			break
		}
		names = append(names, o.Value)
	}
	if len(names) == 0 {
		return "none: the field has no options"
	}
	return strings.Join(names, ", ")
}

// appendNew appends the values not already in list.
func appendNew[T comparable](list []T, vs ...T) []T {
	for _, v := range vs {
		if !slices.Contains(list, v) {
			list = append(list, v)
		}
	}
	return list
}
