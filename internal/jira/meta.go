package jira

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/cowjacket/formjira/internal/ticket"
)

// Meta fetches what Jira accepts for the target, fresh on every call
// (caching is the caller's choice): createmeta for the project and issue
// type in platform mode, the request type's fields in JSM mode.
func (c *Client) Meta(ctx context.Context, t ticket.Target) (*ticket.Meta, error) {
	raw, err := c.MetaBody(ctx, t)
	if err != nil {
		return nil, err
	}
	if t.JSM() {
		return ParseRequestTypeFields(raw)
	}
	return ParseCreatemeta(raw)
}

// MetaBody is Meta's raw JSON: createmeta pages joined into one page, or
// the request type's fields as Jira answered them.
func (c *Client) MetaBody(ctx context.Context, t ticket.Target) ([]byte, error) {
	if t.JSM() {
		desk, typ := t.ServiceDeskID, t.RequestTypeID
		path := "rest/servicedeskapi/servicedesk/" + url.PathEscape(desk) + "/requesttype/" + url.PathEscape(typ) + "/field"
		_, raw, err := c.do(ctx, c.desk, OpRequestTypeField, http.MethodGet, path, nil)
		return raw, err
	}
	project := t.Project
	typeID, err := c.issueTypeID(ctx, project, t.IssueType)
	if err != nil {
		return nil, err
	}
	var values []json.RawMessage
	for start := 0; ; {
		path := c.api("issue/createmeta/" + url.PathEscape(project) + "/issuetypes/" + url.PathEscape(typeID) +
			"?startAt=" + strconv.Itoa(start) + "&maxResults=200")
		_, raw, err := c.do(ctx, c.platform, OpCreatemeta, http.MethodGet, path, nil)
		if err != nil {
			return nil, err
		}
		// Jira Cloud's spec names the list "fields" (and declares "results"),
		// Data Center answers "values"; isLast is not always there and total
		// may change between pages, so stop on whichever says "done" first
		// (https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/#api-rest-api-3-issue-createmeta-projectidorkey-issuetypes-issuetypeid-get).
		var page struct {
			Total   int               `json:"total"`
			IsLast  *bool             `json:"isLast"`
			Values  []json.RawMessage `json:"values"`
			Fields  []json.RawMessage `json:"fields"`
			Results []json.RawMessage `json:"results"`
		}
		if err := json.Unmarshal(raw, &page); err != nil {
			return nil, fmt.Errorf("jira createmeta: decode: %w", err)
		}
		got := slices.Concat(page.Values, page.Fields, page.Results)
		values = append(values, got...)
		start += len(got)
		if len(got) == 0 || (page.IsLast != nil && *page.IsLast) || (page.Total > 0 && start >= page.Total) {
			break
		}
	}
	return json.Marshal(map[string]any{"startAt": 0, "maxResults": len(values), "total": len(values), "isLast": true, "values": values})
}

// issueTypeID accepts an id or a name (resolved via createmeta's list).
func (c *Client) issueTypeID(ctx context.Context, project, issueType string) (string, error) {
	if _, err := strconv.Atoi(issueType); err == nil {
		return issueType, nil
	}
	_, raw, err := c.do(ctx, c.platform, OpCreatemeta, http.MethodGet, c.api("issue/createmeta/"+url.PathEscape(project)+"/issuetypes?maxResults=200"), nil)
	if err != nil {
		return "", err
	}
	var page struct {
		Values []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"values"`
		IssueTypes []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"issueTypes"`
	}
	if err := json.Unmarshal(raw, &page); err != nil {
		return "", fmt.Errorf("jira issue types: decode: %w", err)
	}
	for _, t := range append(page.Values, page.IssueTypes...) {
		if strings.EqualFold(t.Name, issueType) {
			return t.ID, nil
		}
	}
	return "", fmt.Errorf("jira: issue type %q not found in project %s: %w", issueType, project, ErrPermanent)
}
