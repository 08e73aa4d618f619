package mapping

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/ticket"
	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

// Check validates the mapping against Jira's meta and sample events (for
// `ticketer check`): unknown field ids, Jira-required fields not mapped,
// type mismatches (mapping vs Jira, column vs mapping) and sample values
// Jira would refuse. table lists the mapped fields; problems is empty when
// the mapping is good; warnings are choices that work but hurt (a service
// project's issues without a Customer Request Type).
func (m *Mapping) Check(meta *ticket.Meta, samples []*formsv1.FormSubmission) (table string, problems, warnings []string) {
	if meta == nil || len(meta.Fields) == 0 {
		return m.table(&ticket.Meta{}), []string{"Jira returned no fields for " + m.target() + ": nothing to check against"}, nil
	}
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	where := m.target()

	for _, id := range []string{"summary"} {
		if _, ok := meta.Fields[id]; !ok {
			add("%s: not a field of %s", id, where)
		}
	}
	if m.description != nil {
		if _, ok := meta.Fields["description"]; !ok {
			add("description: not a field of %s (remove the description template)", where)
		}
	}
	if _, ok := meta.Fields["labels"]; !ok && m.mode == ModePlatform {
		add("labels: not on the create screen of %s, so the hash label (how ticketer finds a ticket again) cannot be set", where)
	}
	if it, ok := meta.Fields["issuetype"]; ok && m.mode == ModePlatform && len(it.Allowed) > 0 &&
		!slices.ContainsFunc(it.Allowed, func(o ticket.Option) bool { return o.ID == m.issueType }) {
		add("issue_type: %s is not an issue type of this screen (allowed: %s)", m.issueType, optionIDs(it.Allowed))
	}

	mapped := map[string]bool{"summary": true, "project": true, "issuetype": true, "labels": true}
	if m.description != nil {
		mapped["description"] = true
	}
	for _, id := range m.fixedOrder {
		mapped[id] = true
		if _, ok := meta.Fields[id]; !ok {
			add("fixed: %s is not a field of %s", id, where)
		}
	}
	for i, spec := range m.fields {
		mapped[spec.Field] = true
		fm, ok := meta.Fields[spec.Field]
		if !ok {
			add("fields[%d]: column %q → %s: unknown field id (not a field of %s)", i, spec.Column, spec.Field, where)
			continue
		}
		if want, ok := m.compatible(spec.Type, fm); !ok {
			add("fields[%d]: column %q → %s (%s): mapped as %s, but Jira's field is %s (map it as %s)", i, spec.Column, fm.ID, fm.Name, spec.Type, jiraType(fm), want)
		}
		if spec.Type.option() && len(fm.Allowed) == 0 {
			add("fields[%d]: column %q → %s (%s): Jira lists no allowed values for it", i, spec.Column, fm.ID, fm.Name)
		}
	}
	var missing []string
	for id, fm := range meta.Fields {
		if fm.Required && !fm.HasDefault && !mapped[id] {
			missing = append(missing, id)
		}
	}
	sort.Strings(missing)
	for _, id := range missing {
		add("%s (%s): required by Jira but not mapped", id, meta.Fields[id].Name)
	}

	problems = append(problems, m.checkRequester(meta)...)
	problems = append(problems, m.checkColumnKinds(samples)...)
	problems = append(problems, m.checkSamples(meta, samples)...)
	return m.table(meta), problems, m.warnings(meta)
}

// checkRequester: the request type and reporter the mapping sets must be
// fields of the create screen.
func (m *Mapping) checkRequester(meta *ticket.Meta) []string {
	var out []string
	if m.mode == ModeJSM {
		// Raising for a customer (raiseOnBehalfOf) needs the bot to be an
		// agent of the desk; the request type says whether it may.
		if m.requester.email != "" && !meta.CanRaiseOnBehalfOf {
			out = append(out, fmt.Sprintf("requester: the bot may not raise requests on behalf of customers in %s (canRaiseOnBehalfOf is false): make it an agent of the service desk", m.target()))
		}
		return out
	}
	if m.requestType != "" && meta.RequestTypeField() == "" {
		out = append(out, fmt.Sprintf("request_type: %s has no Customer Request Type field (%s): is it a service project?", m.target(), ticket.RequestTypeCustom))
	}
	if _, ok := meta.Fields["reporter"]; m.reporter && !ok {
		out = append(out, fmt.Sprintf("reporter: not on the create screen of %s, so the requester cannot be the reporter", m.target()))
	}
	return out
}

// warnings are mappings Jira accepts that still miss what a service
// project is for.
func (m *Mapping) warnings(meta *ticket.Meta) []string {
	var out []string
	if m.mode == ModePlatform && m.requestType == "" && meta.RequestTypeField() != "" {
		out = append(out, fmt.Sprintf("request_type: not set, but %s is a service project: its issues will not show on the customer portal, "+
			"the requester gets no notifications, and queues and SLAs keyed on request types miss them (set request_type, e.g. \"41\")", m.target()))
	}
	if m.mode == ModePlatform && meta.RequestTypeField() != "" && !m.reporter {
		out = append(out, fmt.Sprintf("reporter: not set, so the bot is the reporter of every issue in %s and requesters cannot see their requests on the portal (set requester and reporter: requester)", m.target()))
	}
	return out
}

func (m *Mapping) target() string {
	if m.mode == ModeJSM {
		return fmt.Sprintf("service desk %s request type %s", m.serviceDeskID, m.requestTypeID)
	}
	return fmt.Sprintf("project %s issue type %s", m.project, m.issueType)
}

// compatible reports whether a mapping type can fill Jira's field, and if
// not, which type would.
func (m *Mapping) compatible(t fieldType, fm ticket.FieldMeta) (want string, ok bool) {
	textarea := strings.HasSuffix(fm.Custom, ":textarea") || fm.ID == "description" || fm.ID == "environment"
	switch {
	case fm.Type == "string" && textarea:
		want = "textarea"
		// v2 and JSM take a plain string in a textarea too; v3 needs ADF.
		ok = t == typeTextarea || (t == typeText && !m.adf())
	case fm.Type == "string":
		want, ok = "text", t == typeText
	case fm.Type == "number":
		want, ok = "number", t == typeNumber
	case fm.Type == "option":
		want, ok = "select or radio", t == typeSelect || t == typeRadio
	case fm.Type == "array" && fm.Items == "option":
		want, ok = "checkboxes or multiselect", t == typeCheckboxes || t == typeMultiselect
	case fm.Type == "array" && fm.Items == "string":
		want, ok = "labels", t == typeLabels
	case fm.Type == "date":
		want, ok = "date", t == typeDate
	case fm.Type == "datetime":
		want, ok = "datetime", t == typeDatetime
	case fm.Type == "user":
		want, ok = "user", t == typeUser
	default:
		// A type this mapping has no converter for (cascading select,
		// version, …): a fixed value is the only way to set it.
		want, ok = "a fixed value", false
	}
	return want, ok
}

// checkColumnKinds compares what the columns hold (by the samples) with the
// mapping types: a date column mapped to a select is a mistake even if
// every sample happened to fail for another reason.
func (m *Mapping) checkColumnKinds(samples []*formsv1.FormSubmission) []string {
	var out []string
	seen := map[string]bool{}
	for _, ev := range samples {
		for i, spec := range m.fields {
			v := form.Lookup(ev, spec.Column)
			kind := form.Kind(v)
			if kind == "" || kind == "null" || kind == "text" || kind == "raw" {
				continue
			}
			bad := false
			switch kind {
			case "date", "timestamp":
				bad = spec.Type.option() || spec.Type == typeNumber || spec.Type == typeUser
			case "integer", "number", "decimal", "boolean":
				bad = spec.Type == typeDate || spec.Type == typeDatetime || spec.Type == typeUser
			}
			key := spec.Column + "\x00" + kind
			if bad && !seen[key] {
				seen[key] = true
				out = append(out, fmt.Sprintf("fields[%d]: column %q holds %s values but is mapped as %s (→ %s)", i, spec.Column, kind, spec.Type, spec.Field))
			}
		}
	}
	return out
}

// checkSamples builds every sample and reports each distinct problem once,
// with the samples (1-based) that have it.
func (m *Mapping) checkSamples(meta *ticket.Meta, samples []*formsv1.FormSubmission) []string {
	type hit struct{ samples []int }
	hits := map[string]*hit{}
	var order []string
	for i, ev := range samples {
		_, err := m.Build(ev, meta)
		if err == nil {
			continue
		}
		ps := Problems(err)
		if len(ps) == 0 {
			ps = []FieldError{{Message: err.Error()}}
		}
		for _, p := range ps {
			// Mapping-level problems are reported above, once.
			if strings.HasPrefix(p.Message, "not a field of") || strings.HasPrefix(p.Message, "required by Jira but not mapped") {
				continue
			}
			msg := p.Error()
			h := hits[msg]
			if h == nil {
				h = &hit{}
				hits[msg] = h
				order = append(order, msg)
			}
			h.samples = append(h.samples, i+1)
		}
	}
	out := make([]string, 0, len(order))
	for _, msg := range order {
		out = append(out, "sample "+sampleList(hits[msg].samples)+": "+msg)
	}
	return out
}

func sampleList(ns []int) string {
	const show = 5
	parts := make([]string, 0, show+1)
	for i, n := range ns {
		if i == show {
			parts = append(parts, fmt.Sprintf("and %d more", len(ns)-show))
			break
		}
		parts = append(parts, strconv.Itoa(n))
	}
	return strings.Join(parts, ", ")
}

func optionIDs(os []ticket.Option) string {
	ids := make([]string, len(os))
	for i, o := range os {
		ids[i] = o.ID
	}
	return strings.Join(ids, ", ")
}

// jiraType names a field's type the way Jira's admin pages do, e.g.
// "select", "multicheckboxes", "date".
func jiraType(fm ticket.FieldMeta) string {
	if i := strings.LastIndex(fm.Custom, ":"); i >= 0 {
		return fm.Custom[i+1:]
	}
	if fm.Type == "array" && fm.Items != "" {
		return "array of " + fm.Items
	}
	if fm.Type == "" {
		return "unknown"
	}
	return fm.Type
}

// table prints the mapped fields, one row per Jira field.
func (m *Mapping) table(meta *ticket.Meta) string {
	var sb strings.Builder
	tw := tabwriter.NewWriter(&sb, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COLUMN\tFIELD\tNAME\tTYPE\tJIRA TYPE\tREQUIRED")
	row := func(column, id, typ string) {
		fm, ok := meta.Fields[id]
		name, jt, req := "?", "not in Jira", ""
		if ok {
			name, jt = fm.Name, jiraType(fm)
			if fm.Required {
				req = "yes"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", column, id, name, typ, jt, req)
	}
	row("(template)", "summary", "summary")
	if m.description != nil {
		typ := "wiki text"
		if m.adf() {
			typ = "ADF"
		}
		row("(template)", "description", typ)
	}
	for _, spec := range m.fields {
		typ := string(spec.Type)
		if spec.Type.multi() {
			typ += fmt.Sprintf(" (%q)", spec.Separator)
		}
		if spec.Zone != nil {
			typ += ", in " + spec.Zone.String()
		}
		if spec.Required {
			typ += ", required"
		}
		row(spec.Column, spec.Field, typ)
	}
	for _, id := range m.fixedOrder {
		row("(fixed)", id, "fixed")
	}
	labels := strings.Join(append(slices.Clone(m.labels), ticket.HashLabelPrefix+"<hash>"), " ")
	if _, ok := meta.Fields["labels"]; ok || m.mode == ModePlatform {
		row("(fixed)", "labels", labels)
	} else {
		fmt.Fprintf(tw, "(fixed)\tlabels\t-\t%s\tadded after create (no labels field in the request type)\t\n", labels)
	}
	switch {
	case m.requester.email != "" && m.mode == ModeJSM:
		fmt.Fprintf(tw, "%s\traiseOnBehalfOf\t-\te-mail → customer accountId\t-\t\n", m.requester.email)
	case m.requester.email != "" && m.reporter:
		fmt.Fprintf(tw, "%s\treporter\t-\te-mail → customer accountId\t-\t\n", m.requester.email)
	}
	if m.requestType != "" {
		fmt.Fprintf(tw, "(fixed)\t%s\tRequest Type\t%q\t-\t\n", or(meta.RequestTypeField(), "customfield_10010"), m.requestType)
	}
	_ = tw.Flush() // a strings.Builder does not fail
	return sb.String()
}

// or is s, or def when s is empty.
func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
