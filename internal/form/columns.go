package form

import (
	"google.golang.org/protobuf/proto"

	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

// WithValue is a copy of cols with the named column's value replaced: a
// row as it would be with one field typed differently (tests, examples).
func WithValue(cols []*formsv1.Column, name string, v *formsv1.Value) []*formsv1.Column {
	out := make([]*formsv1.Column, len(cols))
	for i, c := range cols {
		c = proto.Clone(c).(*formsv1.Column)
		if c.GetName() == name {
			c.Value = v
		}
		out[i] = c
	}
	return out
}
