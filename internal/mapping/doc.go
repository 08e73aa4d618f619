// # The mapping file
//
// A mapping (deploy/mapping.yaml for project CP) is YAML:
//
//	mode: platform            # or jsm; default platform
//	api_version: 3            # platform: 2 or 3 (required)
//	project: CP               # project key (JQL uses it in jsm mode too)
//	issue_type: "10003"       # platform: issue type id, never a name
//	service_desk_id: "4"      # jsm
//	request_type_id: "41"     # jsm
//	requester: {email: emailaddress, name: newusername}  # whose request: jsm raises on their behalf
//	request_type: "41"        # platform: the Customer Request Type (or "portal/key")
//	reporter: requester       # platform: the requester's account is the reporter
//	unknown_requester: dead_letter   # or raise_as_bot when no account can be had
//	labels: [web-form]        # fixed labels; cowjacket-<hash> is always added
//	fixed: {priority: {id: "3"}}       # field id → value sent as is
//	summary: 'Phone request: {{col "newusername"}} ({{col "departmentname"}})'
//	description: |
//	  New user: {{col "newusername"}}
//	  Record hash: {{.Hash}}
//	fields:
//	  - {column: newusername, field: customfield_10070, type: text, required: true}
//	  - {column: handsetsandheadsets, field: customfield_10078, type: checkboxes, separator: "; "}
//
// summary and description are text/template templates: {{col "name"}} is a
// column's value (trimmed, "" for NULL; a column missing from the event is
// an error, so a typo is caught by `ticketer check`), {{.Hash}} and
// {{.HashLabel}} the record hash. The summary's white space (newlines
// included) folds to single spaces and a summary over 255 characters is cut
// with "…" — it is ours to shape. Custom fields are never cut: a value over
// the limit makes the row unmappable, naming the field.
//
// Field types and what is sent:
//
//	text          string, one line (white space folded), ≤ 255 characters
//	textarea      v3: ADF document; v2/jsm: wiki text; ≤ 32,767 characters
//	number        JSON number
//	select|radio  {"value": "<Jira's spelling>"}; jsm {"id": "<option id>"}
//	checkboxes|multiselect  array of the same, split at separator
//	date          "YYYY-MM-DD"
//	datetime      "2006-01-02T15:04:05.000-0700" (UTC, or the field's timezone)
//	labels        array of strings, split at separator, spaces → "-"
//	user          {"accountId": "<column value>"}
//
// A date or datetime field may name a timezone (an IANA name such as
// Europe/Berlin; default UTC): a timestamptz's date is its date there (23:30
// UTC is tomorrow in Berlin), and a wall clock without an offset — a
// timestamp column, an HTML datetime-local value — is read as that zone's.
//
// ticket.Option values match Jira's allowed values ignoring case and spacing and
// are sent with Jira's spelling; anything else makes the row unmappable
// before Jira is called, so no issue key is burned. Multi-value columns are
// split at the separator without its spaces ("a;b" = "a; b"), items trimmed,
// empty ones dropped, duplicates removed. required: true refuses an empty or
// NULL column even where Jira would accept it; fields Jira requires are
// always enforced.
//
// # Literal text
//
// Form text is never interpreted by Jira. API v3: textareas and the
// description are ADF documents made of plain text nodes, one paragraph per
// line. API v2 and JSM (requests are raised without isAdfRequest): column
// values in textareas and the description are wiki-escaped (see
// escapeWiki), and text fields with escape: true; a one-line text field is
// plain text in Jira Cloud unless its field configuration sets the wiki
// renderer, so by default it is sent as typed. Markup written in the
// description template itself is the operator's and is kept. Emoticons such
// as (y) or :) are not escaped: they render as icons, never as links,
// mentions or images.
//
// # JSM labels
//
// A JSM request type often has no labels field (request type 41 has none).
// Then Request.LabelsPending is set and ticketer adds Request.Labels with an
// issue edit right after creating the request: the hash label is what JQL
// reconciliation searches for.
package mapping
