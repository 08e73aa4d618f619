package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// WebhookSink POSTs alerts as JSON: "text" for Slack-compatible receivers,
// plus structured fields for everything else.
type WebhookSink struct {
	url    string
	client *http.Client
}

// NewWebhookSink posts to rawURL with client (nil: a client with a 30 s timeout).
func NewWebhookSink(rawURL string, client *http.Client) *WebhookSink {
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	return &WebhookSink{url: rawURL, client: client}
}

// String names the sink in logs; the URL path is a secret on Slack.
func (w *WebhookSink) String() string { return "webhook " + redactURL(w.url) }

// WebhookPayload is the JSON body WebhookSink posts.
type WebhookPayload struct {
	Text    string         `json:"text"`
	Subject string         `json:"subject"`
	Alerts  []WebhookAlert `json:"alerts"`
}

// WebhookAlert is one Alert in WebhookPayload.
type WebhookAlert struct {
	Kind     Kind              `json:"kind"`
	Summary  string            `json:"summary"`
	Detail   string            `json:"detail,omitempty"`
	Count    int               `json:"count"`
	At       time.Time         `json:"at"`
	Resolved bool              `json:"resolved,omitempty"`
	Fields   map[string]string `json:"fields,omitempty"`
}

// Send posts one message; 2xx is success, 408/429/5xx are retryable and
// other statuses permanent.
func (w *WebhookSink) Send(ctx context.Context, subject, body string, alerts []Alert) error {
	p := WebhookPayload{Text: subject + "\n" + body, Subject: subject, Alerts: make([]WebhookAlert, len(alerts))}
	for i, a := range alerts {
		p.Alerts[i] = WebhookAlert{
			Kind: a.Kind, Summary: a.headline(), Detail: a.Detail, Count: a.Count,
			At: a.At, Resolved: a.Resolved, Fields: a.Fields,
		}
	}
	buf, err := json.Marshal(p)
	if err != nil {
		return Permanent(fmt.Errorf("webhook: encode: %w", err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(buf))
	if err != nil {
		return Permanent(errors.New("webhook: invalid URL"))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(req)
	if err != nil {
		// *url.Error repeats the URL, which holds the token: keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("webhook %s: %w", redactURL(w.url), err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16)) // let the connection be reused
	if resp.StatusCode/100 == 2 {
		return nil
	}
	err = fmt.Errorf("webhook %s: %s: %s", redactURL(w.url), resp.Status, bytes.TrimSpace(snippet))
	switch {
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode >= 500:
		return err
	default:
		return Permanent(err)
	}
}
