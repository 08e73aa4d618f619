package form

import formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"

// kindOf names a value's kind as the proto field does ("text", "date", ...).
func kindOf(v any) string {
	val, ok := v.(*formsv1.Value)
	if !ok || val == nil {
		return ""
	}
	switch val.Kind.(type) {
	case *formsv1.Value_Null:
		return "null"
	case *formsv1.Value_Text:
		return "text"
	case *formsv1.Value_Integer:
		return "integer"
	case *formsv1.Value_Number:
		return "number"
	case *formsv1.Value_Decimal:
		return "decimal"
	case *formsv1.Value_Boolean:
		return "boolean"
	case *formsv1.Value_Date:
		return "date"
	case *formsv1.Value_Timestamp:
		return "timestamp"
	case *formsv1.Value_Raw:
		return "raw"
	}
	return ""
}

// Kind names a value's kind ("text", "date", "null", ...) for error messages
// and the mapping's type checks.
func Kind(v *formsv1.Value) string { return kindOf(v) }
