package capture

import (
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestParsePubAck(t *testing.T) {
	tests := []struct {
		data   string
		status string
		seq    uint64
		dup    bool
		err    error // errors.Is target; nil = success
		apiErr bool
	}{
		{data: `{"stream":"FORMS", "seq":7}`, seq: 7},
		{data: `{"stream":"FORMS", "seq":12,"duplicate": true}`, seq: 12, dup: true},
		{data: `{"stream":"FORMS","domain":"hub","seq":3,"duplicate":false}`, seq: 3},
		{data: `{"seq":9,"stream":"FORMS"}`, seq: 9}, // another order: encoding/json
		{data: `{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"},"stream":"FORMS","seq":0}`, apiErr: true},
		{data: `{"stream":"FORMS"`, err: errInvalidAck},
		{data: `{"seq":1}`, err: errInvalidAck},
		{status: "503", err: errNoStream},
		{status: "408", err: errInvalidAck},
	}
	for _, tt := range tests {
		m := &nats.Msg{Data: []byte(tt.data), Header: nats.Header{}}
		if tt.status != "" {
			m.Header.Set("Status", tt.status)
		}
		seq, dup, err := parsePubAck(m)
		var api *jetstream.APIError
		switch {
		case tt.apiErr:
			if !errors.As(err, &api) || api.Code != 503 {
				t.Errorf("%s: err %v, want the API error", tt.data, err)
			}
		case tt.err != nil:
			if !errors.Is(err, tt.err) {
				t.Errorf("%s %s: err %v, want %v", tt.data, tt.status, err, tt.err)
			}
		case err != nil || seq != tt.seq || dup != tt.dup:
			t.Errorf("%s: %d %v %v, want %d %v", tt.data, seq, dup, err, tt.seq, tt.dup)
		}
	}
}
