package trace

import (
	"strconv"
	"time"

	"github.com/cowjacket/formjira/internal/stream"
)

// Outcomes of a journey.
const (
	Ticketed     = "ticketed"
	DeadLettered = "dead_lettered"
	OnItsWay     = "on_its_way"
)

// Result is the answer to one query.
type Result struct {
	Query    Query     `json:"query"`
	Matches  int       `json:"matches"` // requests found (Journeys may show fewer)
	Journeys []Journey `json:"journeys"`
	// NotCaptured is set when nothing matched.
	NotCaptured *NotCaptured `json:"not_captured,omitempty"`
	// Indexed is the last FORMS sequence the index covers, FormsLast the
	// stream's: an index behind means a very recent request may not be
	// found yet.
	Indexed   uint64 `json:"indexed_through"`
	FormsLast uint64 `json:"forms_last_seq"`
	Took      Millis `json:"took_ms"`
}

// Journey is one request's way through the pipeline.
type Journey struct {
	Hash    string `json:"hash"`
	Name    string `json:"name"`
	Email   string `json:"email"`
	Outcome string `json:"outcome"` // ticketed, dead_lettered, on_its_way
	Summary string `json:"summary"` // the outcome in one sentence

	Row        *Row        `json:"row,omitempty"`
	Forms      *Forms      `json:"forms,omitempty"`
	Delivery   Delivery    `json:"delivery"`
	Ticket     *Ticket     `json:"ticket,omitempty"`
	DeadLetter *DeadLetter `json:"dead_letter,omitempty"`
	OnItsWay   *Position   `json:"on_its_way,omitempty"`
	Steps      []Step      `json:"steps"`
}

// Row is where the request came from.
type Row struct {
	Table      string    `json:"table"`
	PrimaryKey string    `json:"primary_key"`
	CommitTime time.Time `json:"commit_time,omitzero"`
	CommitLSN  string    `json:"commit_lsn,omitempty"`
}

// Forms is the request's event in stream FORMS.
type Forms struct {
	Seq     uint64    `json:"seq"`
	Subject string    `json:"subject"`
	Stored  time.Time `json:"stored_at"`
	Gone    bool      `json:"gone,omitempty"` // no longer in the stream (limits)
}

// Delivery is what the ticketer did with it so far.
type Delivery struct {
	Deliveries  int       `json:"deliveries"`        // times the consumer delivered it
	Attempts    int       `json:"attempts"`          // create attempts (claims) recorded
	Failures    int       `json:"failures"`          // failed deliveries counted towards MAX_DELIVER
	Replays     int       `json:"replays,omitempty"` // replays by operators
	Status      string    `json:"status,omitempty"`  // the latest outcome's status
	Record      string    `json:"record,omitempty"`  // FORMS_TICKETS state: claimed, created
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	At          time.Time `json:"at,omitzero"` // the latest outcome
}

// Ticket is the request's Jira issue.
type Ticket struct {
	Key       string    `json:"key"`
	URL       string    `json:"url,omitempty"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	Latency   Millis    `json:"commit_to_ticket_ms,omitempty"`
}

// DeadLetter is the request's entry in FORMS_DLQ.
type DeadLetter struct {
	Seq         uint64    `json:"seq"`
	Stored      time.Time `json:"stored_at"`
	Reason      string    `json:"reason"`
	ReasonText  string    `json:"reason_text"`
	FieldErrors []string  `json:"field_errors,omitempty"`
	Attempts    int       `json:"attempts"`
	Replay      string    `json:"replay"` // the command that replays it
}

// Position is where a request still on its way is.
type Position struct {
	State      string `json:"state"` // in words
	Delivered  uint64 `json:"consumer_delivered_seq"`
	AckFloor   uint64 `json:"consumer_ack_floor_seq"`
	Pending    uint64 `json:"consumer_pending"`
	AckPending int    `json:"consumer_ack_pending"`
	Ahead      uint64 `json:"ahead"` // events before it not yet delivered
}

// NotCaptured is what is known when no request matches.
type NotCaptured struct {
	Note     string                 `json:"note"`
	Captures []stream.CaptureStatus `json:"captures"`
	// CaptureDeadLetters are the FORMS_DLQ entries of capture's that
	// match: the row was captured, but could not become an event.
	CaptureDeadLetters []uint64 `json:"capture_dead_letters,omitempty"`
}

// Step is one point of the timeline.
type Step struct {
	At     time.Time `json:"at,omitzero"`
	What   string    `json:"what"`
	Detail string    `json:"detail,omitempty"`
}

// Millis is a duration that JSON shows in milliseconds.
type Millis time.Duration

// MarshalJSON is the duration in (fractional) milliseconds.
func (m Millis) MarshalJSON() ([]byte, error) {
	return []byte(formatFloat(float64(time.Duration(m).Microseconds()) / 1000)), nil
}

// String is the duration rounded for people.
func (m Millis) String() string {
	d := time.Duration(m)
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// UnmarshalJSON reads milliseconds back.
func (m *Millis) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return err
	}
	*m = Millis(time.Duration(f * float64(time.Millisecond)))
	return nil
}
