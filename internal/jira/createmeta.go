package jira

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cowjacket/formjira/internal/ticket"
)

type schemaJSON struct {
	Type   string `json:"type"`
	Items  string `json:"items"`
	Custom string `json:"custom"`
	System string `json:"system"`
}

// ParseCreatemeta reads the body of
// GET /rest/api/N/issue/createmeta/{project}/issuetypes/{id}. Disabled
// options are left out of Allowed: Jira refuses them on create.
func ParseCreatemeta(data []byte) (*ticket.Meta, error) {
	var body struct {
		Values *[]struct {
			FieldID         string     `json:"fieldId"`
			Key             string     `json:"key"`
			Name            string     `json:"name"`
			Required        bool       `json:"required"`
			HasDefaultValue bool       `json:"hasDefaultValue"`
			Schema          schemaJSON `json:"schema"`
			AllowedValues   []struct {
				ID       json.Number `json:"id"`
				Value    string      `json:"value"`
				Name     string      `json:"name"`
				Disabled bool        `json:"disabled"`
			} `json:"allowedValues"`
		} `json:"values"`
	}
	if err := json.Unmarshal(data, &body); err != nil {
		return nil, fmt.Errorf("createmeta: %w", err)
	}
	if body.Values == nil {
		return nil, errors.New(`createmeta: no "values" (is this the body of /issue/createmeta/{project}/issuetypes/{id}?)`)
	}
	meta := &ticket.Meta{Fields: map[string]ticket.FieldMeta{}}
	for _, v := range *body.Values {
		id := v.FieldID
		if id == "" {
			id = v.Key
		}
		if id == "" {
			return nil, fmt.Errorf("createmeta: field %q has no fieldId", v.Name)
		}
		fm := ticket.FieldMeta{
			ID: id, Name: v.Name, Required: v.Required, HasDefault: v.HasDefaultValue,
			Type: v.Schema.Type, Items: v.Schema.Items, Custom: v.Schema.Custom,
		}
		for _, a := range v.AllowedValues {
			if a.Disabled {
				continue
			}
			val := a.Value
			if val == "" {
				val = a.Name // issue types, priorities, …
			}
			fm.Allowed = append(fm.Allowed, ticket.Option{ID: a.ID.String(), Value: val})
		}
		meta.Fields[id] = fm
	}
	return meta, nil
}

// ParseRequestTypeFields reads the body of
// GET /rest/servicedeskapi/servicedesk/{id}/requesttype/{id}/field. JSM
// calls an option's id "value" and its text "label".
func ParseRequestTypeFields(data []byte) (*ticket.Meta, error) {
	var body struct {
		Fields *[]struct {
			FieldID       string            `json:"fieldId"`
			Name          string            `json:"name"`
			Required      bool              `json:"required"`
			JiraSchema    schemaJSON        `json:"jiraSchema"`
			DefaultValues []json.RawMessage `json:"defaultValues"`
			PresetValues  []json.RawMessage `json:"presetValues"`
			ValidValues   []struct {
				Value string `json:"value"`
				Label string `json:"label"`
			} `json:"validValues"`
		} `json:"requestTypeFields"`
		CanRaiseOnBehalfOf bool `json:"canRaiseOnBehalfOf"`
	}
	if err := json.Unmarshal(data, &body); err != nil {
		return nil, fmt.Errorf("request type fields: %w", err)
	}
	if body.Fields == nil {
		return nil, errors.New(`request type fields: no "requestTypeFields" (is this the body of /servicedeskapi/servicedesk/{id}/requesttype/{id}/field?)`)
	}
	meta := &ticket.Meta{Fields: map[string]ticket.FieldMeta{}, CanRaiseOnBehalfOf: body.CanRaiseOnBehalfOf}
	for _, f := range *body.Fields {
		if f.FieldID == "" {
			return nil, fmt.Errorf("request type fields: field %q has no fieldId", f.Name)
		}
		fm := ticket.FieldMeta{
			ID: f.FieldID, Name: f.Name, Required: f.Required,
			HasDefault: len(f.DefaultValues) > 0 || len(f.PresetValues) > 0,
			Type:       f.JiraSchema.Type, Items: f.JiraSchema.Items, Custom: f.JiraSchema.Custom,
		}
		for _, v := range f.ValidValues {
			fm.Allowed = append(fm.Allowed, ticket.Option{ID: v.Value, Value: v.Label})
		}
		meta.Fields[f.FieldID] = fm
	}
	return meta, nil
}
