// Package jql is the small part of Jira's query language the sandbox
// answers: clauses on labels, project and key (or id) joined by AND, each
// "=" or "in (…)", text searches "text ~ …" / "description ~ …", and an
// ORDER BY that is accepted and ignored. Anything else is refused with
// Jira's wording, so a client cannot rely on what real Jira would reject.
package jql

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"
)

// Doc is what a query is evaluated against: one issue as search sees it.
type Doc struct {
	Key, ID string
	Labels  []string
	Fields  map[string]any
}

// Query is a parsed JQL query.
type Query struct {
	projects [][]string // per clause, any of
	labels   [][]string
	keys     [][]string
	texts    []textClause
	// oldestFirst: ORDER BY created|key|id ASC; without ORDER BY, or DESC,
	// results are newest first.
	oldestFirst bool
}

// OldestFirst reports whether the query asked for ascending creation
// order.
func (q Query) OldestFirst() bool { return q.oldestFirst }

// textClause is "field ~ value". Like Jira's index, it matches words, not
// characters: the value and the field text are split into lowercase words
// (runs of letters and digits). A value in double quotes inside the JQL
// string ("\"a b\"") is a phrase: its words must appear together and in
// order; otherwise every word must appear somewhere.
type textClause struct {
	field  string // "text" (summary, description and every text field) or "description"
	words  []string
	phrase bool
}

func (c textClause) matches(is Doc) bool {
	var text []string
	if c.field == "description" {
		text = collectWords(is.Fields["description"], nil)
	} else {
		for _, id := range slices.Sorted(maps.Keys(is.Fields)) {
			if id == "summary" || id == "description" || strings.HasPrefix(id, "customfield_") || id == "environment" {
				text = collectWords(is.Fields[id], text)
			}
		}
	}
	if c.phrase {
		for i := 0; i+len(c.words) <= len(text); i++ {
			if slices.Equal(text[i:i+len(c.words)], c.words) {
				return true
			}
		}
		return false
	}
	for _, w := range c.words {
		if !slices.Contains(text, w) {
			return false
		}
	}
	return true
}

// collectWords appends the words of every string in v (a plain value, an
// option object, a list, an Atlassian document).
func collectWords(v any, out []string) []string {
	switch v := v.(type) {
	case string:
		out = append(out, words(v)...)
	case []any:
		for _, e := range v {
			out = collectWords(e, out)
		}
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			if k == "text" || k == "value" || k == "content" {
				out = collectWords(v[k], out)
			}
		}
	}
	return out
}

func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// Projects lists every value the query's project clauses name, for the
// caller to check that each exists.
func (q Query) Projects() []string {
	var out []string
	for _, set := range q.projects {
		out = append(out, set...)
	}
	return out
}

// Matches reports whether the issue satisfies every clause; projectKey and
// projectID identify the one project the sandbox holds.
func (q Query) Matches(is Doc, projectKey, projectID string) bool {
	for _, set := range q.projects {
		if !slices.ContainsFunc(set, func(p string) bool { return strings.EqualFold(p, projectKey) || p == projectID }) {
			return false
		}
	}
	for _, set := range q.labels {
		if !slices.ContainsFunc(set, func(l string) bool { return slices.Contains(is.Labels, l) }) {
			return false
		}
	}
	for _, set := range q.keys {
		if !slices.ContainsFunc(set, func(k string) bool { return strings.EqualFold(k, is.Key) || k == is.ID }) {
			return false
		}
	}
	for _, c := range q.texts {
		if !c.matches(is) {
			return false
		}
	}
	return true
}

// Error's text is what Jira puts in errorMessages for a bad query.
type Error string

func (e Error) Error() string { return string(e) }

// Parse parses src, or answers the error Jira's parser would.
func Parse(src string) (Query, error) {
	var q Query
	toks, err := lexJQL(src)
	if err != nil {
		return q, err
	}
	if len(toks) == 0 {
		return q, Error("Unbounded JQL queries are not allowed here. Please add a search restriction to your query.")
	}
	i := 0
	next := func() (tok, bool) {
		if i >= len(toks) {
			return tok{}, false
		}
		i++
		return toks[i-1], true
	}
	for {
		f, ok := next()
		if !ok {
			return q, Error("Error in the JQL Query: Expecting a field name but got the end of the query.")
		}
		if f.quoted {
			return q, Error(fmt.Sprintf("Error in the JQL Query: Field '%s' does not exist or you do not have permission to view it.", f.text))
		}
		field := strings.ToLower(f.text)
		if field == "order" {
			i-- // ORDER BY directly: no restriction at all
			break
		}
		op, ok := next()
		if !ok {
			return q, Error(fmt.Sprintf("Error in the JQL Query: Expecting operator but got the end of the query after '%s'.", f.text))
		}
		var values []string
		textField := field == "text" || field == "description"
		switch {
		case textField && !(!op.quoted && op.text == "~"):
			return q, Error(fmt.Sprintf("Error in the JQL Query: The operator '%s' is not supported by the '%s' field.", op.text, f.text))
		case textField:
			v, ok := next()
			if !ok || (!v.quoted && isPunct(v.text)) {
				return q, Error("Error in the JQL Query: Expecting either a value, list or function but got the end of the query.")
			}
			c := textClause{field: field}
			val := strings.TrimSpace(v.text)
			if len(val) >= 2 && strings.HasPrefix(val, `"`) && strings.HasSuffix(val, `"`) {
				c.phrase, val = true, val[1:len(val)-1]
			}
			if c.words = words(val); len(c.words) == 0 {
				return q, Error(fmt.Sprintf("Error in the JQL Query: The text query '%s' for field '%s' is not valid.", v.text, f.text))
			}
			q.texts = append(q.texts, c)
		case !op.quoted && op.text == "=":
			v, ok := next()
			if !ok || (!v.quoted && isPunct(v.text)) {
				return q, Error("Error in the JQL Query: Expecting either a value, list or function but got the end of the query.")
			}
			values = []string{v.text}
		case !op.quoted && strings.EqualFold(op.text, "in"):
			if p, ok := next(); !ok || p.quoted || p.text != "(" {
				return q, Error("Error in the JQL Query: Expecting '(' after 'in'.")
			}
			for {
				v, ok := next()
				if !ok || (!v.quoted && isPunct(v.text)) {
					return q, Error("Error in the JQL Query: Expecting a value in the list.")
				}
				values = append(values, v.text)
				sep, ok := next()
				if !ok {
					return q, Error("Error in the JQL Query: Expecting ')' to close the list.")
				}
				if !sep.quoted && sep.text == ")" {
					break
				}
				if sep.quoted || sep.text != "," {
					return q, Error(fmt.Sprintf("Error in the JQL Query: Expecting ',' or ')' but got '%s'.", sep.text))
				}
			}
		default:
			return q, Error(fmt.Sprintf("Error in the JQL Query: The operator '%s' is not supported by this sandbox.", op.text))
		}
		switch field {
		case "text", "description":
		case "labels":
			q.labels = append(q.labels, values)
		case "project":
			q.projects = append(q.projects, values)
		case "key", "issuekey", "id":
			q.keys = append(q.keys, values)
		default:
			return q, Error(fmt.Sprintf("Error in the JQL Query: Field '%s' does not exist or you do not have permission to view it.", f.text))
		}
		conj, ok := next()
		if !ok {
			break
		}
		if !conj.quoted && strings.EqualFold(conj.text, "and") {
			continue
		}
		if !conj.quoted && strings.EqualFold(conj.text, "order") {
			i--
			break
		}
		return q, Error(fmt.Sprintf("Error in the JQL Query: Expecting 'AND' but got '%s'.", conj.text))
	}
	if len(q.projects)+len(q.labels)+len(q.keys)+len(q.texts) == 0 {
		return q, Error("Unbounded JQL queries are not allowed here. Please add a search restriction to your query.")
	}
	// ORDER BY field [ASC|DESC]
	// (https://support.atlassian.com/jira-core-cloud/docs/advanced-search-reference-jql-keywords,
	// "ORDER BY"): a field's default direction depends on the field, so the
	// client always names it; the sandbox takes ASC. created, key and id
	// all order by creation here.
	if i < len(toks) {
		o, _ := next()
		b, ok := next()
		if !strings.EqualFold(o.text, "order") || !ok || !strings.EqualFold(b.text, "by") || i >= len(toks) {
			return q, Error("Error in the JQL Query: Expecting 'BY' and a field after 'ORDER'.")
		}
		field, _ := next()
		q.oldestFirst = true
		if dir, ok := next(); ok {
			q.oldestFirst = !strings.EqualFold(dir.text, "desc")
		}
		switch strings.ToLower(field.text) {
		case "created", "key", "id", "issuekey":
		default:
			q.oldestFirst = false // other fields: the sandbox keeps newest first
		}
	}
	return q, nil
}

type tok struct {
	text   string
	quoted bool
}

func isPunct(s string) bool { return s == "(" || s == ")" || s == "," || s == "=" }

func lexJQL(src string) ([]tok, error) {
	var toks []tok
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')' || c == ',' || c == '=':
			toks = append(toks, tok{text: string(c)})
			i++
		case c == '!' || c == '~' || c == '<' || c == '>':
			j := i + 1
			if j < len(src) && (src[j] == '=' || src[j] == '~') {
				j++
			}
			toks = append(toks, tok{text: src[i:j]})
			i = j
		case c == '"' || c == '\'':
			var b strings.Builder
			j := i + 1
			for ; j < len(src) && src[j] != c; j++ {
				if src[j] == '\\' && j+1 < len(src) {
					j++
				}
				b.WriteByte(src[j])
			}
			if j >= len(src) {
				return nil, Error(fmt.Sprintf("Error in the JQL Query: The quoted string '%s' has not been completed.", src[i:]))
			}
			toks = append(toks, tok{text: b.String(), quoted: true})
			i = j + 1
		default:
			j := i
			for j < len(src) && !strings.ContainsRune(" \t\r\n(),=!~<>\"'", rune(src[j])) {
				j++
			}
			toks = append(toks, tok{text: src[i:j]})
			i = j
		}
	}
	return toks, nil
}
