package mapping

import (
	"reflect"
	"strings"
	"testing"
)

// markup is what a form user might type that Jira would otherwise render:
// a mention, a colour macro, an image, a link, a heading, a list.
const markup = "[~accountid:123] {color:red}x{color} !image.png! [a|http://x]\n" +
	"h1. Big\n* bullet\n# number\n*bold* _it_ -del- +ins+ ^sup^ ~sub~ ??cite?? {{mono}} (?)\n" +
	`back\slash \\ and &amp; Mary-Jane 2025-10-28 first_last`

func TestMarkupV2(t *testing.T) {
	m := shipped(t, shippedMapping, 2)
	req, err := m.Build(saraWith(t, map[string]*string{"Comments": ptr(markup), "newusername": ptr("[~accountid:123] {color:red}x{color}")}), platformMeta(t))
	if err != nil {
		t.Fatal(err)
	}
	f := req.Fields
	golden(t, "markup-v2.golden.json", map[string]any{
		"summary": f["summary"], "description": f["description"],
		"customfield_10070": f["customfield_10070"], "customfield_10082": f["customfield_10082"],
	})
	comments := f["customfield_10082"].(string)
	for _, want := range []string{`\[\~accountid:123\]`, `\{color:red\}x\{color\}`, `\!image.png\!`, `\[a\|http://x\]`, "\nh1\\. Big", "\n\\* bullet", "\n\\# number", "Mary-Jane 2025-10-28 first_last"} {
		if !strings.Contains(comments, want) {
			t.Errorf("comments lack %q:\n%s", want, comments)
		}
	}
	if d := f["description"].(string); !strings.Contains(d, "\nNew user: \\[\\~accountid:123\\] \\{color:red\\}x\\{color\\}\n") ||
		!strings.Contains(d, "\nComments:\n\\[\\~accountid:123\\]") {
		t.Errorf("description %q", d)
	}
	// One-line text fields are plain text in Jira Cloud: sent as typed.
	if v := f["customfield_10070"].(string); v != "[~accountid:123] {color:red}x{color}" {
		t.Errorf("one-line text %q, want it as typed", v)
	}
	// The summary is never rendered: sent as typed.
	if s := f["summary"].(string); s != "Phone request: [~accountid:123] {color:red}x{color} (Finance)" {
		t.Errorf("summary %q", s)
	}
}

func TestMarkupV3(t *testing.T) {
	m := shipped(t, shippedMapping, 3)
	req, err := m.Build(saraWith(t, map[string]*string{"Comments": ptr(markup), "newusername": ptr("[~accountid:123] {color:red}x{color}")}), platformMeta(t))
	if err != nil {
		t.Fatal(err)
	}
	f := req.Fields
	golden(t, "markup-v3.golden.json", map[string]any{
		"summary": f["summary"], "description": f["description"],
		"customfield_10070": f["customfield_10070"], "customfield_10082": f["customfield_10082"],
	})
	// v3: a text field is plain; textareas are documents of plain text
	// nodes, one paragraph per line, the markup as typed.
	if f["customfield_10070"] != "[~accountid:123] {color:red}x{color}" {
		t.Errorf("text %q", f["customfield_10070"])
	}
	doc := roundTrip(t, map[string]any{"d": f["customfield_10082"]})["d"].(map[string]any)
	var lines []string
	for _, p := range doc["content"].([]any) {
		pm := p.(map[string]any)
		if pm["type"] != "paragraph" {
			t.Errorf("node %v, want paragraph", pm["type"])
		}
		var line string
		for _, n := range pm["content"].([]any) {
			nm := n.(map[string]any)
			if nm["type"] != "text" || nm["marks"] != nil {
				t.Errorf("node %v, want a text node without marks", nm)
			}
			line += nm["text"].(string)
		}
		lines = append(lines, line)
	}
	if got := strings.Join(lines, "\n"); got != markup {
		t.Errorf("ADF text\n%q\nwant\n%q", got, markup)
	}
}

func TestEscapeWiki(t *testing.T) {
	for in, want := range map[string]string{
		"plain text, O'Brien":      "plain text, O'Brien",
		"[~accountid:123]":         `\[\~accountid:123\]`,
		"{color:red}x{color}":      `\{color:red\}x\{color\}`,
		"!image.png!":              `\!image.png\!`,
		"[a|http://x]":             `\[a\|http://x\]`,
		"Mary-Jane 2025-10-28 a_b": "Mary-Jane 2025-10-28 a_b",
		"-strike- *b* _i_":         `\-strike\- \*b\* \_i\_`,
		"h2. title\n  bq. quote":   "h2\\. title\n  bq\\. quote",
		"not h1. here":             "not h1. here",
		"# one\n## two\nroom #5":   "\\# one\n\\## two\nroom #5",
		"why?? (?) ok?":            `why\?\? (\?) ok?`,
		`C:\dir \\ end`:            `C:&#92;dir &#92;&#92; end`,
		"R&D &amp; &#92; & co":     "R&D &amp;amp; &amp;#92; & co",
		"----":                     `\-\-\-\-`,
		"{{mono}}":                 `\{\{mono\}\}`,
	} {
		if got := escapeWiki(in); got != want {
			t.Errorf("escapeWiki(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestADF(t *testing.T) {
	got := adfDoc("a\n\nb")
	want := map[string]any{"type": "doc", "version": 1, "content": []any{
		map[string]any{"type": "paragraph", "content": []any{map[string]any{"type": "text", "text": "a"}}},
		map[string]any{"type": "paragraph", "content": []any{}},
		map[string]any{"type": "paragraph", "content": []any{map[string]any{"type": "text", "text": "b"}}},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("adfDoc = %v", got)
	}
}

func TestTruncate(t *testing.T) {
	if got := truncate("abcdef", 4); got != "abc…" {
		t.Errorf("truncate = %q", got)
	}
	if got := truncate("ab  cdef", 4); got != "ab…" {
		t.Errorf("truncate keeps no trailing space: %q", got)
	}
	if got := truncate("ééé", 3); got != "ééé" {
		t.Errorf("truncate counts characters: %q", got)
	}
}
