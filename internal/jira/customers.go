package jira

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// FindAccount is the account of an e-mail address ("" when nobody has one
// visible to us): first among the service desk's customers (inDesk), then by
// user search. Both match by prefix or partial text, and privacy settings
// may hide an e-mail, so only an exact (case-insensitive) e-mail match
// counts.
func (c *Client) FindAccount(ctx context.Context, desk, email string) (id string, inDesk bool, err error) {
	if desk != "" {
		id, err := c.findCustomer(ctx, desk, email)
		if id != "" || err != nil {
			return id, id != "", err
		}
	}
	id, err = c.findUser(ctx, email)
	return id, false, err
}

// findCustomer pages GET /servicedesk/{id}/customer?query= (experimental;
// paged by start/limit until isLastPage, which is the only reliable end:
// "size is less than limit and isLastPage is false" marks a capped page).
// https://developer.atlassian.com/cloud/jira/service-desk/rest/api-group-servicedesk/#api-rest-servicedeskapi-servicedesk-servicedeskid-customer-get
func (c *Client) findCustomer(ctx context.Context, desk, email string) (string, error) {
	for start := 0; start < 10000; {
		path := "rest/servicedeskapi/servicedesk/" + url.PathEscape(desk) + "/customer?query=" + url.QueryEscape(email) +
			"&start=" + strconv.Itoa(start) + "&limit=50"
		_, raw, err := c.do(ctx, c.desk, OpCustomerSearch, http.MethodGet, path, nil)
		if err != nil {
			return "", err
		}
		var page struct {
			Size       int       `json:"size"`
			IsLastPage bool      `json:"isLastPage"`
			Values     []Account `json:"values"`
		}
		if err := json.Unmarshal(raw, &page); err != nil {
			return "", fmt.Errorf("jira customer search: decode: %w", err)
		}
		for _, a := range page.Values {
			if a.AccountID != "" && strings.EqualFold(strings.TrimSpace(a.Email), email) {
				return a.AccountID, nil
			}
		}
		if page.IsLastPage || len(page.Values) == 0 {
			return "", nil
		}
		start += len(page.Values)
	}
	return "", nil
}

// findUser is GET /user/search?query= (a bare array; anonymous callers get
// an empty one).
// https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-user-search/#api-rest-api-3-user-search-get
func (c *Client) findUser(ctx context.Context, email string) (string, error) {
	_, raw, err := c.do(ctx, c.platform, OpUserSearch, http.MethodGet, c.api("user/search?maxResults=50&query="+url.QueryEscape(email)), nil)
	if err != nil {
		return "", err
	}
	var users []Account
	if err := json.Unmarshal(raw, &users); err != nil {
		return "", fmt.Errorf("jira user search: decode: %w", err)
	}
	for _, u := range users {
		if u.AccountID != "" && strings.EqualFold(strings.TrimSpace(u.Email), email) {
			return u.AccountID, nil
		}
	}
	return "", nil
}

// CreateCustomer makes a JSM customer of the e-mail and returns its
// accountId. strictConflictStatusCode=true makes an existing e-mail a 409
// (ErrExists: look it up instead), where otherwise it would be a 400 that
// cannot be told from a malformed address. Needs the Jira Administrators
// global permission (403: ErrPermission).
// https://developer.atlassian.com/cloud/jira/service-desk/rest/api-group-customer/#api-rest-servicedeskapi-customer-post
func (c *Client) CreateCustomer(ctx context.Context, email, name string) (string, error) {
	body := map[string]string{"email": email, "displayName": name}
	_, raw, err := c.do(ctx, c.desk, OpCustomerCreate, http.MethodPost, "rest/servicedeskapi/customer?strictConflictStatusCode=true", body)
	if err != nil {
		return "", err
	}
	var a Account
	if err := json.Unmarshal(raw, &a); err != nil || a.AccountID == "" {
		return "", &APIError{Op: OpCustomerCreate, Status: http.StatusBadGateway, Messages: []string{"unreadable answer to a customer create"}}
	}
	return a.AccountID, nil
}

// AddCustomer makes the account a customer of the service desk: needed to
// raise requests for it in a desk that only its customers may use. 204
// also when it already was one. Needs service desk administrator rights.
// https://developer.atlassian.com/cloud/jira/service-desk/rest/api-group-servicedesk/#api-rest-servicedeskapi-servicedesk-servicedeskid-customer-post
func (c *Client) AddCustomer(ctx context.Context, desk, accountID string) error {
	body := map[string][]string{"accountIds": {accountID}}
	_, _, err := c.do(ctx, c.desk, OpCustomerAdd, http.MethodPost, "rest/servicedeskapi/servicedesk/"+url.PathEscape(desk)+"/customer", body)
	return err
}
