package capture

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

var (
	errNoStream   = errors.New("no JetStream stream answers for the subject (503 no responders)")
	errInvalidAck = errors.New("invalid JetStream acknowledgement")
)

// parsePubAck reads JetStream's answer to a publish: the stream sequence
// and whether the Nats-Msg-Id was a duplicate, or the error. The server's
// usual answer, {"stream":"FORMS", "seq":7} (with "duplicate": true for a
// re-send), is read without encoding/json; anything else goes through it.
func parsePubAck(m *nats.Msg) (seq uint64, duplicate bool, err error) {
	d := m.Data
	if len(d) == 0 {
		if m.Header.Get("Status") == "503" {
			return 0, false, errNoStream
		}
		return 0, false, fmt.Errorf("%w: empty, status %q", errInvalidAck, m.Header.Get("Status"))
	}
	if bytes.HasPrefix(d, []byte(`{"stream":`)) && !bytes.Contains(d, []byte(`"error"`)) {
		if seq, ok := numberAfter(d, `"seq":`); ok {
			dup := false
			if i := bytes.Index(d, []byte(`"duplicate":`)); i >= 0 {
				rest := bytes.TrimLeft(d[i+len(`"duplicate":`):], " ")
				dup = bytes.HasPrefix(rest, []byte("true"))
			}
			return seq, dup, nil
		}
	}
	var resp struct {
		Error     *jetstream.APIError `json:"error"`
		Stream    string              `json:"stream"`
		Seq       uint64              `json:"seq"`
		Duplicate bool                `json:"duplicate"`
	}
	if err := json.Unmarshal(d, &resp); err != nil {
		return 0, false, fmt.Errorf("%w: %v", errInvalidAck, err)
	}
	if resp.Error != nil {
		return 0, false, resp.Error
	}
	if resp.Stream == "" {
		return 0, false, fmt.Errorf("%w: %s", errInvalidAck, d)
	}
	return resp.Seq, resp.Duplicate, nil
}

// numberAfter reads the unsigned number following key in d.
func numberAfter(d []byte, key string) (uint64, bool) {
	i := bytes.Index(d, []byte(key))
	if i < 0 {
		return 0, false
	}
	rest := bytes.TrimLeft(d[i+len(key):], " ")
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	n, err := strconv.ParseUint(string(rest[:j]), 10, 64)
	return n, err == nil
}
