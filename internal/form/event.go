package form

import (
	"time"

	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// SchemaVersion is the event layout version of cowjacket.forms.v1.
const SchemaVersion = 1

// NewEvent builds the event for one row: it picks the hash fields (configured
// or default), computes the hash and fills the primary key into src.
func NewEvent(columns []*formsv1.Column, primaryKey, configuredHashFields []string, src *formsv1.Source, capturedAt time.Time) *formsv1.FormSubmission {
	fields := HashFields(columns, primaryKey, configuredHashFields)
	if src == nil {
		src = &formsv1.Source{}
	}
	src.PrimaryKey = nil
	for _, c := range columns {
		for _, pk := range primaryKey {
			if c.GetName() == pk {
				src.PrimaryKey = append(src.PrimaryKey, c)
			}
		}
	}
	return &formsv1.FormSubmission{
		SchemaVersion: SchemaVersion,
		Hash:          Hash(columns, fields),
		HashFields:    fields,
		Columns:       columns,
		Source:        src,
		CapturedAt:    timestamppb.New(capturedAt),
	}
}
