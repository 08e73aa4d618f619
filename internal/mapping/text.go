package mapping

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// cleanText makes a form value safe to carry: valid UTF-8, line endings as
// \n, and no control characters other than tab and newline (Jira stores
// them but nobody can see or type them).
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\r':
			return '\n'
		case r == '\n' || r == '\t':
			return r
		case unicode.IsControl(r):
			return -1
		}
		return r
	}, s)
}

// singleLine is a value for a one-line field: every run of white space,
// newlines included, becomes one space.
func singleLine(s string) string {
	return strings.Join(strings.Fields(cleanText(s)), " ")
}

// multiLine trims a multi-line value and the ends of its lines, keeping the
// line structure.
func multiLine(s string) string {
	lines := strings.Split(cleanText(s), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRightFunc(l, unicode.IsSpace)
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// truncate shortens s to at most n characters as Jira counts them,
// marking the cut with "…" (never inside a character).
func truncate(s string, n int) string {
	if jiraLen(s) <= n {
		return s
	}
	used := 1 // the "…"
	cut := 0
	for i, r := range s {
		w := utf16.RuneLen(r)
		if w < 0 {
			w = 1
		}
		if used+w > n {
			break
		}
		used += w
		cut = i + utf8.RuneLen(r)
	}
	return strings.TrimRightFunc(s[:cut], unicode.IsSpace) + "…"
}

// jiraLen is s's length as Jira (Java) measures a limit: UTF-16 code units,
// so an emoji counts two. Never less than the rune count: a limit kept here
// is kept by Jira whichever it counts.
func jiraLen(s string) int {
	n := 0
	for _, r := range s {
		if utf16.RuneLen(r) == 2 {
			n += 2
		} else {
			n++
		}
	}
	return n
}

// Jira's wiki renderer gives these characters a meaning anywhere: links
// and mentions ([ ] |), macros ({ }), images (!).
const wikiAlways = `[]{}!|`

// Text effects (*bold* _italic_ -deleted- +inserted+ ^sup^ ~sub~) only open
// after and close before a non-word character, so inside a word
// ("Mary-Jane", "2025-10-28", "first_last") they are left as typed.
const wikiEffects = `*_-+^~`

// Headings and block quotes are words at a line start: "h1. ", "bq. ".
var wikiBlock = regexp.MustCompile(`(?m)^([ \t]*)(h[1-6]|bq)\.`)

// escapeWiki makes free text literal under Jira's wiki renderer (API v2 and
// JSM requests): link, macro and image characters are always
// backslash-escaped; text-effect characters unless inside a word; "#" and
// list markers at a line start; "??" (citation) and "(?)"; a line-start
// "h1." or "bq." gets its dot escaped. A backslash becomes the entity &#92;
// because "\\" is the renderer's line break, and an "&" that starts an
// entity becomes &amp;.
func escapeWiki(s string) string {
	var b strings.Builder
	b.Grow(len(s) + len(s)/8)
	rs := []rune(s)
	at := func(i int) rune {
		if i < 0 || i >= len(rs) {
			return 0
		}
		return rs[i]
	}
	word := func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }
	lineStart := true // only spaces so far on this line
	for i, r := range rs {
		switch {
		case r == '\\':
			b.WriteString("&#92;")
		case r == '&' && entityAt(rs[i+1:]):
			b.WriteString("&amp;")
		case strings.ContainsRune(wikiAlways, r),
			strings.ContainsRune(wikiEffects, r) && !(word(at(i-1)) && word(at(i+1))),
			r == '#' && lineStart,
			r == '?' && (at(i-1) == '?' || at(i-1) == '(' || at(i+1) == '?'):
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
		switch {
		case r == '\n':
			lineStart = true
		case r != ' ' && r != '\t':
			lineStart = false
		}
	}
	return wikiBlock.ReplaceAllString(b.String(), `$1$2\.`)
}

// entityAt reports whether rest (the text after an "&") reads as an HTML
// entity, which the renderer would decode.
func entityAt(rest []rune) bool {
	i := 0
	if i < len(rest) && rest[i] == '#' {
		i++
	}
	start := i
	for i < len(rest) && (rest[i] < utf8.RuneSelf && (unicode.IsLetter(rest[i]) || unicode.IsDigit(rest[i]))) {
		i++
	}
	return i > start && i < len(rest) && rest[i] == ';'
}

// adfDoc is text as an Atlassian document: one paragraph per line, plain
// text nodes without marks, so nothing in it is interpreted (API v3).
func adfDoc(s string) map[string]any {
	lines := strings.Split(s, "\n")
	content := make([]any, 0, len(lines))
	for _, l := range lines {
		p := map[string]any{"type": "paragraph"}
		if l != "" {
			// ADF forbids empty text nodes; an empty line is an empty paragraph.
			p["content"] = []any{map[string]any{"type": "text", "text": l}}
		} else {
			p["content"] = []any{}
		}
		content = append(content, p)
	}
	return map[string]any{"type": "doc", "version": 1, "content": content}
}
