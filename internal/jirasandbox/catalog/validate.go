package catalog

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/cowjacket/formjira/internal/jirasandbox/wire"
)

// Jira's texts for field errors, as Jira Cloud words them where we could
// find them quoted; the rest are close approximations in Jira's style.
const (
	msgProject        = "Specify a valid project ID or key"
	msgIssueTypeEmpty = "Specify an issue type"
	msgIssueType      = "The issue type selected is invalid."
	MsgSummaryMissing = "You must specify a summary of the issue."
	msgSummaryLong    = "Summary can't exceed 255 characters."
	msgSummaryNewline = "The summary is invalid because it contains newline characters."
	msgNotOnScreen    = "Field '%s' cannot be set. It is not on the appropriate screen, or unknown."
	msgRequired       = "%s is required."
	msgNotString      = "Operation value must be a string"
	msgNotADF         = "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
	msgTooLong        = "The entered text is too long. It exceeds the allowed limit of %s characters."
	msgNotObject      = "data was not an object"
	msgNotArray       = "data was not an array"
	msgOptionValue    = "Option value '%s' is not valid"
	msgOptionID       = "Option id '%s' is not valid"
	msgOptionNoIDVal  = "Could not find valid 'id' or 'value' in the Option object."
	msgDate           = "Error parsing date string: %s"
	msgDateTime       = "Error parsing time: %s"
	msgLabelSpaces    = "The label '%s' contains spaces which is invalid."
	msgLabelLong      = "The label '%s' exceeds the maximum length for a single label of 255 characters."
	msgUser           = "Specify a valid value for %s"
	// The wording for a request type that does not exist is not published.
	msgRequestType = "The request type '%s' does not exist in this service project."
)

const (
	maxText     = 255
	maxTextArea = 32767
)

// ValidateCreate checks an issue's fields against createmeta the way Jira
// does: every problem is reported at once, keyed by field id. projectOK is
// false when the project itself is wrong (no issue number is then used).
// Whether a user field names an existing account is the caller's check.
func (c *Catalog) ValidateCreate(fields map[string]any, adf bool) (errs map[string]string, projectOK bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	errs = map[string]string{}
	if !c.projectMatches(fields["project"]) {
		// Jira stops here: without a project there is no screen to check against.
		errs["project"] = msgProject
		return errs, false
	}
	switch it, ok := fields["issuetype"]; {
	case !ok || isEmpty(it):
		errs["issuetype"] = msgIssueTypeEmpty
		return errs, true
	case !c.issueTypeMatches(it):
		errs["issuetype"] = msgIssueType
		return errs, true
	}
	for id, v := range fields {
		f, ok := c.metaByID[id]
		if !ok {
			errs[id] = fmt.Sprintf(msgNotOnScreen, id)
			continue
		}
		if msg := checkValue(f, v, adf, false); msg != "" {
			errs[id] = msg
		}
	}
	c.requireFields(c.meta, fields, errs)
	return errs, true
}

// ValidateEdit checks the fields of an edit: no required check.
func (c *Catalog) ValidateEdit(fields map[string]any, adf bool) map[string]string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	errs := map[string]string{}
	for id, v := range fields {
		f, ok := c.metaByID[id]
		if !ok || f.Kind == kindProject || f.Kind == kindIssueType {
			errs[id] = fmt.Sprintf(msgNotOnScreen, id)
			continue
		}
		if msg := checkValue(f, v, adf, false); msg != "" {
			errs[id] = msg
		}
	}
	return errs
}

// ValidateRequest checks JSM requestFieldValues against the request type.
func (c *Catalog) ValidateRequest(values map[string]any, adf bool) map[string]string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	errs := map[string]string{}
	for id, v := range values {
		f, ok := c.jsmByID[id]
		if !ok {
			errs[id] = fmt.Sprintf(msgNotOnScreen, id)
			continue
		}
		if msg := checkValue(f, v, adf, true); msg != "" {
			errs[id] = msg
		}
	}
	c.requireFields(c.jsm, values, errs)
	return errs
}

func (c *Catalog) requireFields(meta []*fieldMeta, fields map[string]any, errs map[string]string) {
	for _, f := range meta {
		if !f.Required || f.HasDefault || f.Kind == kindProject || f.Kind == kindIssueType {
			continue
		}
		if _, bad := errs[f.ID]; bad {
			continue
		}
		if v, ok := fields[f.ID]; ok && !isEmpty(v) {
			continue
		}
		if f.Kind == kindSummary {
			errs[f.ID] = MsgSummaryMissing
		} else {
			errs[f.ID] = fmt.Sprintf(msgRequired, f.Name)
		}
	}
}

// checkValue validates one value; lenient accepts what JSM accepts besides
// Jira's own forms (an option given as its plain label or id).
func checkValue(f *fieldMeta, v any, adf, lenient bool) string {
	if v == nil {
		return "" // null clears a field; the required check catches it
	}
	switch f.Kind {
	case kindSummary:
		s, ok := v.(string)
		switch {
		case !ok:
			return msgNotString
		case strings.ContainsAny(s, "\r\n"):
			return msgSummaryNewline
		case utf8.RuneCountInString(s) > maxText:
			return msgSummaryLong
		}
	case kindText:
		s, ok := v.(string)
		if !ok {
			return msgNotString
		}
		if utf8.RuneCountInString(s) > maxText {
			return fmt.Sprintf(msgTooLong, "255")
		}
	case kindTextArea:
		var text string
		if adf {
			if !isADF(v) {
				return msgNotADF
			}
			text = ADFText(v)
		} else {
			s, ok := v.(string)
			if !ok {
				return msgNotString
			}
			text = s
		}
		if utf8.RuneCountInString(text) > maxTextArea {
			return fmt.Sprintf(msgTooLong, "32,767")
		}
	case kindOption:
		return checkOption(f, v, lenient)
	case kindOptions:
		items, ok := v.([]any)
		if !ok {
			return msgNotArray
		}
		for _, it := range items {
			if msg := checkOption(f, it, lenient); msg != "" {
				return msg
			}
		}
	case kindDate:
		s, ok := v.(string)
		if !ok {
			return msgNotString
		}
		if _, err := time.Parse(time.DateOnly, s); err != nil || len(s) != len(time.DateOnly) {
			return fmt.Sprintf(msgDate, s)
		}
	case kindDateTime:
		s, ok := v.(string)
		if !ok {
			return msgNotString
		}
		if !parsesAsJiraTime(s) {
			return fmt.Sprintf(msgDateTime, s)
		}
	case kindLabels:
		items, ok := v.([]any)
		if !ok {
			return msgNotArray
		}
		for _, it := range items {
			s, ok := it.(string)
			switch {
			case !ok:
				return msgNotString
			case strings.IndexFunc(s, unicode.IsSpace) >= 0:
				return fmt.Sprintf(msgLabelSpaces, s)
			case utf8.RuneCountInString(s) > maxText:
				return fmt.Sprintf(msgLabelLong, s)
			}
		}
	case kindUser:
		m, ok := v.(map[string]any)
		if !ok {
			return msgNotObject
		}
		if wire.IDString(m["accountId"]) == "" && wire.IDString(m["id"]) == "" {
			return fmt.Sprintf(msgUser, strings.ToLower(f.Name))
		}
	case kindRequestType:
		s, ok := v.(string)
		if !ok {
			return msgNotString
		}
		if _, ok := RequestTypeOf(s); !ok {
			return fmt.Sprintf(msgRequestType, s)
		}
	case kindProject, kindIssueType, kindAny:
	}
	return ""
}

// CheckLabels validates a labels value (an array of strings without
// spaces), as an edit's labels operations need.
func CheckLabels(v any) string {
	return checkValue(&fieldMeta{ID: "labels", Kind: kindLabels}, v, false, false)
}

func checkOption(f *fieldMeta, v any, lenient bool) string {
	if s, ok := v.(string); ok && lenient {
		if f.optionByID(s) || f.optionByValue(s) {
			return ""
		}
		return fmt.Sprintf(msgOptionValue, s)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return msgNotObject
	}
	if id, present := m["id"]; present {
		s := wire.IDString(id)
		if !f.optionByID(s) {
			return fmt.Sprintf(msgOptionID, s)
		}
		return ""
	}
	if val, ok := m["value"].(string); ok {
		if !f.optionByValue(val) {
			return fmt.Sprintf(msgOptionValue, val)
		}
		return ""
	}
	return msgOptionNoIDVal
}

// parsesAsJiraTime accepts Jira's own form (2025-10-28T09:30:00.000+0000)
// and RFC 3339, which Jira Cloud also takes.
func parsesAsJiraTime(s string) bool {
	for _, layout := range []string{"2006-01-02T15:04:05.000-0700", "2006-01-02T15:04:05-0700", time.RFC3339Nano} {
		if _, err := time.Parse(layout, s); err == nil {
			return true
		}
	}
	return false
}

func isEmpty(v any) bool {
	switch t := v.(type) {
	case nil:
		return true
	case string:
		return strings.TrimSpace(t) == ""
	case []any:
		return len(t) == 0
	case map[string]any:
		if t["type"] == "doc" {
			return strings.TrimSpace(ADFText(t)) == ""
		}
		return len(t) == 0
	}
	return false
}

// isADF checks the outer shape of an Atlassian Document: what Jira checks
// before it looks at the nodes.
func isADF(v any) bool {
	m, ok := v.(map[string]any)
	if !ok || m["type"] != "doc" {
		return false
	}
	if ver, ok := m["version"].(float64); !ok || ver != 1 {
		return false
	}
	content, ok := m["content"].([]any)
	if !ok {
		return false
	}
	for _, n := range content {
		nm, ok := n.(map[string]any)
		if !ok {
			return false
		}
		if _, ok := nm["type"].(string); !ok {
			return false
		}
	}
	return true
}

// ADFText flattens an ADF document to text, block nodes on their own lines.
func ADFText(v any) string {
	var b strings.Builder
	var walk func(n any)
	walk = func(n any) {
		m, ok := n.(map[string]any)
		if !ok {
			return
		}
		if t, ok := m["text"].(string); ok {
			b.WriteString(t)
		}
		if m["type"] == "hardBreak" {
			b.WriteByte('\n')
		}
		for i, c := range wire.AsSlice(m["content"]) {
			if i > 0 && m["type"] == "doc" {
				b.WriteByte('\n')
			}
			walk(c)
		}
	}
	walk(v)
	return b.String()
}

// TextADF wraps plain text as an ADF document, one paragraph per line, as
// Jira does when a v2-created field is read through v3.
func TextADF(s string) map[string]any {
	var paras []any
	for line := range strings.SplitSeq(s, "\n") {
		p := map[string]any{"type": "paragraph", "content": []any{}}
		if line != "" {
			p["content"] = []any{map[string]any{"type": "text", "text": line}}
		}
		paras = append(paras, p)
	}
	return map[string]any{"type": "doc", "version": 1, "content": paras}
}
