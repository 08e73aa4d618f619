package jira

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// Account is a Jira account as myself, user search and JSM's customer
// lists show it (the e-mail may be hidden by the user's privacy settings).
type Account struct {
	AccountID   string `json:"accountId"`
	Email       string `json:"emailAddress"`
	DisplayName string `json:"displayName"`
}

// Myself is the account the credentials stand for. An answer without an
// accountId is an anonymous one (the credentials failed): ErrAuth.
// https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-myself/#api-rest-api-3-myself-get
func (c *Client) Myself(ctx context.Context) (Account, error) {
	status, raw, err := c.do(ctx, c.platform, OpMyself, http.MethodGet, c.api("myself"), nil)
	if err != nil {
		return Account{}, err
	}
	var me Account
	if err := json.Unmarshal(raw, &me); err != nil {
		return Account{}, fmt.Errorf("jira myself: decode: %w", err)
	}
	if me.AccountID == "" {
		return Account{}, &APIError{Op: OpMyself, Status: status, Anonymous: true,
			Messages: []string{"Jira answered for an anonymous user: the credentials were refused"}}
	}
	return me, nil
}

// DeploymentType is serverInfo's: "Cloud", "Server" or "DataCenter". It
// needs no permission and is allowed anonymously.
// https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-server-info/#api-rest-api-3-serverinfo-get
func (c *Client) DeploymentType(ctx context.Context) (string, error) {
	_, raw, err := c.do(ctx, c.platform, OpServerInfo, http.MethodGet, c.api("serverInfo"), nil)
	if err != nil {
		return "", err
	}
	var info struct {
		DeploymentType string `json:"deploymentType"`
	}
	if err := json.Unmarshal(raw, &info); err != nil {
		return "", fmt.Errorf("jira serverInfo: decode: %w", err)
	}
	return info.DeploymentType, nil
}
