package console_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/cowjacket/formjira/internal/audit"
)

// Every replay is in the audit trail, whatever its outcome: one still
// failing, one of a dead letter that does not exist, and (through the API,
// for scripts) who did it and how.
func TestEveryReplayIsAudited(t *testing.T) {
	p := startPipeline(t)
	seq := p.DLQ()[0].Sequence
	for _, tc := range []struct {
		seq                 uint64
		failing, wantStatus int
		outcome             string
	}{
		{seq, 1, http.StatusOK, "still failing"}, // Astrology is not an option yet
		{999999, 0, http.StatusNotFound, "DLQ 999999: no such dead letter"},
	} {
		st, body := p.api("oper:oper-password", "POST", fmt.Sprintf("/api/dlq/%d/replay", tc.seq))
		if st != tc.wantStatus {
			t.Fatalf("replay of DLQ %d: %d %s", tc.seq, st, body)
		}
		var rep struct {
			AuditSeq uint64 `json:"audit_seq"`
		}
		if err := json.Unmarshal([]byte(body), &rep); err != nil || rep.AuditSeq == 0 {
			t.Fatalf("replay of DLQ %d: no audit entry in the answer: %v %s", tc.seq, err, body)
		}
		st, body = p.api("view:view-password", "GET", "/api/audit")
		var entries []audit.Entry
		if err := json.Unmarshal([]byte(body), &entries); st != 200 || err != nil {
			t.Fatalf("audit: %d %v", st, err)
		}
		var e *audit.Entry
		for i := range entries {
			if entries[i].Seq == rep.AuditSeq {
				e = &entries[i]
			}
		}
		if e == nil {
			t.Fatalf("audit entry %d of the replay of DLQ %d not listed: %s", rep.AuditSeq, tc.seq, body)
		}
		if e.Who != "oper" || e.Via != "basic" || e.Action != "dlq.replay" || e.Failing != tc.failing || !containsLine(e.Outcome, tc.outcome) {
			t.Errorf("audit entry of the replay of DLQ %d: %+v, want oper via basic, %d failing, an outcome with %q", tc.seq, e, tc.failing, tc.outcome)
		}
		// Its start is on record before it, should the replay be cut short.
		if !slices.ContainsFunc(entries, func(s audit.Entry) bool {
			return s.Action == "dlq.replay.start" && s.Who == "oper" && s.Target == e.Target && s.Seq < e.Seq
		}) {
			t.Errorf("no dlq.replay.start entry before the replay of DLQ %d", tc.seq)
		}
	}
}

func containsLine(lines []string, s string) bool {
	return slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, s) })
}
