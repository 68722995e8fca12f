package asyncapi

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Version is the AsyncAPI version of the documents Build produces.
const Version = "3.0.0"

// Info is the document's info object.
type Info struct {
	Title       string // default "gateway"
	Version     string // the API's version; default "1.0.0"
	Description string // default: a sentence saying what the document shows
}

// Route is one route as the document shows it.
type Route struct {
	Name     string
	Service  string
	Method   string
	Path     string // static path; ignored when PathExpr is set
	PathExpr string
	Match    string
	// Streams are the streams the route reads, resolved by the caller
	// (a route without streams: every consumed stream).
	Streams  []string
	Tags     []string
	Priority int
	Retries  int
	Timeout  time.Duration
	Continue bool
	// Schema is the route's decoded JSON Schema document; nil = none.
	// SchemaName names it (the file, for example); routes sharing a
	// SchemaName share one components.schemas entry.
	Schema     any
	SchemaName string
	OnFailure  string // stream of failure events; "" = none
	// Source says where the route comes from ("rules file:line", or a
	// subscription's service); shown as x-source.
	Source string
}

// Spec is everything a document is built from.
type Spec struct {
	Info      Info
	Servers   []string // Redis addresses
	Streams   []string // consumed streams
	DLQStream string   // dead-letter stream; "" = not shown
	Routes    []Route
	// RulesVersion is the rule set's version (sha256), shown as
	// x-rules-version; "" = not shown.
	RulesVersion string
}

// document is the top level, in the order the AsyncAPI spec lists it.
type document struct {
	AsyncAPI           string         `yaml:"asyncapi"`
	Info               map[string]any `yaml:"info"`
	Servers            map[string]any `yaml:"servers,omitempty"`
	DefaultContentType string         `yaml:"defaultContentType"`
	Channels           map[string]any `yaml:"channels"`
	Operations         map[string]any `yaml:"operations"`
	Components         map[string]any `yaml:"components"`
	RulesVersion       string         `yaml:"x-rules-version,omitempty"`
}

// Marshal builds the document for s and renders it as YAML.
func Marshal(s Spec) ([]byte, error) {
	doc, err := build(s)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Fixed component names.
const (
	entryHeaders    = "EntryHeaders"
	replyHeaders    = "ReplyHeaders"
	failureHeaders  = "FailureEventHeaders"
	deadLetterHdrs  = "DeadLetterHeaders"
	replyMessage    = "Reply"
	failureMessage  = "FailureEvent"
	deadLetterMsg   = "DeadLetter"
	replyChannel    = "replies"
	jsonContentType = "application/json"
)

// builder accumulates the document's maps and the IDs already taken.
type builder struct {
	channels, operations, messages, schemas map[string]any
	channelIDs                              map[string]string // stream -> channel ID
	schemaIDs                               map[string]string // SchemaName -> component ID
	taken                                   map[string]bool   // IDs in use, per map prefix
}

func build(s Spec) (*document, error) {
	b := &builder{
		channels: map[string]any{}, operations: map[string]any{}, messages: map[string]any{},
		schemas: fixedSchemas(), channelIDs: map[string]string{}, schemaIDs: map[string]string{}, taken: map[string]bool{},
	}
	for k := range b.schemas {
		b.taken["schema:"+k] = true
	}
	b.messages[replyMessage] = map[string]any{
		"name": "reply", "title": "Request-reply answer",
		"summary":       "Written to the message's reply_to stream for every final outcome of each route.",
		"correlationId": correlationID(),
		"headers":       ref("#/components/schemas/" + replyHeaders),
		"payload":       map[string]any{"type": "string", "description": "the instance's response body; empty when dead-lettered"},
	}
	b.messages[failureMessage] = map[string]any{
		"name": "failure-event", "title": "on_failure event",
		"summary":       "The original entry's fields plus failed_*: written when a route with on_failure dead-letters a message.",
		"correlationId": correlationID(),
		"headers":       ref("#/components/schemas/" + failureHeaders),
	}
	b.channels[replyChannel] = map[string]any{
		"address":     nil,
		"title":       "reply streams",
		"description": "The stream named by each message's reply_to field (dynamic).",
		"messages":    map[string]any{replyMessage: ref("#/components/messages/" + replyMessage)},
	}
	for k := range b.messages {
		b.taken["message:"+k] = true
	}
	b.taken["channel:"+replyChannel] = true
	for _, st := range s.Streams {
		b.channel(st)
	}
	if s.DLQStream != "" {
		b.deadLetters(s.DLQStream)
	}
	for _, r := range s.Routes {
		if err := b.route(r); err != nil {
			return nil, err
		}
	}
	info := map[string]any{
		"title":       or(s.Info.Title, "gateway"),
		"version":     or(s.Info.Version, "1.0.0"),
		"description": or(s.Info.Description, "Streams, routes and message contracts of the content-based routing gateway, generated by `gateway asyncapi` from its config and rules."),
	}
	doc := &document{
		AsyncAPI: Version, Info: info, DefaultContentType: jsonContentType,
		Channels: b.channels, Operations: b.operations, RulesVersion: s.RulesVersion,
		Components: map[string]any{"schemas": b.schemas, "messages": b.messages},
	}
	if len(s.Servers) > 0 {
		doc.Servers = map[string]any{}
		for i, addr := range s.Servers {
			doc.Servers[fmt.Sprintf("redis-%d", i+1)] = map[string]any{
				"host": addr, "protocol": "redis", "description": "Redis (Streams); the gateway reads through one consumer group",
			}
		}
	}
	return doc, nil
}

// channel returns the ID of stream's channel, creating it.
func (b *builder) channel(stream string) string {
	if id, ok := b.channelIDs[stream]; ok {
		return id
	}
	id := b.newID("channel", stream)
	b.channelIDs[stream] = id
	b.channels[id] = map[string]any{
		"address":  stream,
		"title":    stream,
		"messages": map[string]any{},
	}
	return id
}

// addMessage lists message msgID (a component) in channel chID and returns
// the channel-local reference operations must use.
func (b *builder) addMessage(chID, msgID string) map[string]any {
	ch := b.channels[chID].(map[string]any)
	ch["messages"].(map[string]any)[msgID] = ref("#/components/messages/" + msgID)
	return ref("#/channels/" + chID + "/messages/" + msgID)
}

func (b *builder) deadLetters(stream string) {
	ch := b.channel(stream)
	b.messages[deadLetterMsg] = map[string]any{
		"name": "dead-letter", "title": "Dead letter",
		"summary": "The original entry's fields plus dlq_*.",
		"headers": ref("#/components/schemas/" + deadLetterHdrs),
	}
	b.taken["message:"+deadLetterMsg] = true
	b.operations[b.newID("operation", "dead-letter")] = map[string]any{
		"action":   "send",
		"title":    "dead-letter",
		"summary":  "Entries that reach no final delivery are written here with the reason.",
		"channel":  ref("#/channels/" + ch),
		"messages": []any{b.addMessage(ch, deadLetterMsg)},
	}
}

// route adds one operation per stream the route reads, the route's message
// and schema, and its on_failure operation.
func (b *builder) route(r Route) error {
	msgID := b.newID("message", r.Name)
	msg := map[string]any{
		"name":          r.Name,
		"title":         "Message routed by " + r.Name,
		"contentType":   jsonContentType,
		"correlationId": correlationID(),
		"headers":       ref("#/components/schemas/" + entryHeaders),
	}
	if r.Schema != nil {
		sid, err := b.schema(r)
		if err != nil {
			return err
		}
		msg["payload"] = ref("#/components/schemas/" + sid)
	}
	b.messages[msgID] = msg
	streams := slices.Clone(r.Streams)
	slices.Sort(streams)
	for _, st := range slices.Compact(streams) {
		ch := b.channel(st)
		opName := r.Name
		if len(streams) > 1 {
			opName += "@" + st
		}
		op := map[string]any{
			"action":   "receive",
			"title":    r.Name,
			"summary":  fmt.Sprintf("Messages of %s that match are sent to service %s: %s %s", st, r.Service, r.Method, pathOf(r)),
			"channel":  ref("#/channels/" + ch),
			"messages": []any{b.addMessage(ch, msgID)},
			"reply": map[string]any{
				"address":  map[string]any{"location": "$message.header#/reply_to", "description": "the message's reply_to field"},
				"channel":  ref("#/channels/" + replyChannel),
				"messages": []any{ref("#/channels/" + replyChannel + "/messages/" + replyMessage)},
			},
		}
		if r.Match != "" {
			op["description"] = "match: `" + r.Match + "`"
		}
		for k, v := range extensions(r) {
			op[k] = v
		}
		b.operations[b.newID("operation", opName)] = op
	}
	if r.OnFailure != "" {
		ch := b.channel(r.OnFailure)
		b.operations[b.newID("operation", r.Name+".on_failure")] = map[string]any{
			"action":   "send",
			"title":    r.Name + " on_failure",
			"summary":  fmt.Sprintf("When %s dead-letters a message, a failure event is written to %s.", r.Name, r.OnFailure),
			"channel":  ref("#/channels/" + ch),
			"messages": []any{b.addMessage(ch, failureMessage)},
			"x-route":  r.Name,
		}
	}
	return nil
}

// schema files r's schema under components.schemas, once per SchemaName,
// as a Multi Format Schema Object whose format follows the schema's own
// $schema (draft-07 when it names none).
func (b *builder) schema(r Route) (string, error) {
	name := or(r.SchemaName, r.Name)
	if id, ok := b.schemaIDs[name]; ok {
		return id, nil
	}
	format, err := schemaFormat(r.Schema)
	if err != nil {
		return "", fmt.Errorf("route %q: schema %s: %w", r.Name, name, err)
	}
	id := b.newID("schema", strings.TrimSuffix(baseName(name), ".json"))
	b.schemaIDs[name] = id
	b.schemas[id] = map[string]any{"schemaFormat": format, "schema": r.Schema}
	return id, nil
}

// schemaFormat names the format of a JSON Schema document by its $schema.
func schemaFormat(doc any) (string, error) {
	m, ok := doc.(map[string]any)
	if !ok {
		if _, isBool := doc.(bool); isBool {
			return "application/schema+json;version=draft-07", nil
		}
		return "", fmt.Errorf("not a JSON Schema object (%T)", doc)
	}
	dialect, _ := m["$schema"].(string)
	switch {
	case dialect == "" || strings.Contains(dialect, "draft-07"):
		return "application/schema+json;version=draft-07", nil
	case strings.Contains(dialect, "2020-12"):
		return "application/schema+json;version=2020-12", nil
	case strings.Contains(dialect, "2019-09"):
		return "application/schema+json;version=2019-09", nil
	case strings.Contains(dialect, "draft-06"):
		return "application/schema+json;version=draft-06", nil
	case strings.Contains(dialect, "draft-04"):
		return "application/schema+json;version=draft-04", nil
	}
	return "", fmt.Errorf("unknown $schema %q", dialect)
}

// extensions are the route's fields AsyncAPI has no place for.
func extensions(r Route) map[string]any {
	x := map[string]any{
		"x-route": r.Name, "x-service": r.Service, "x-method": r.Method, "x-path": pathOf(r),
		"x-priority": r.Priority, "x-retries": r.Retries, "x-continue": r.Continue,
	}
	if r.PathExpr != "" {
		x["x-path-expr"] = r.PathExpr
	}
	if r.Match != "" {
		x["x-match"] = r.Match
	}
	if len(r.Tags) > 0 {
		x["x-tags"] = r.Tags
	}
	if r.Timeout > 0 {
		x["x-timeout"] = r.Timeout.String()
	}
	if r.SchemaName != "" {
		x["x-schema"] = r.SchemaName
	}
	if r.OnFailure != "" {
		x["x-on-failure"] = r.OnFailure
	}
	if r.Source != "" {
		x["x-source"] = r.Source
	}
	return x
}

func pathOf(r Route) string {
	if r.PathExpr != "" {
		return "(path_expr) " + r.PathExpr
	}
	return or(r.Path, "/")
}

// badIDChars are the characters component and map keys may not hold
// (components require ^[\w\d.\-_]+$; the others end up in $ref pointers).
var badIDChars = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// newID returns a key for name unique among kind's keys.
func (b *builder) newID(kind, name string) string {
	base := badIDChars.ReplaceAllString(name, "_")
	if base == "" {
		base = "_"
	}
	id := base
	for i := 2; b.taken[kind+":"+id]; i++ {
		id = fmt.Sprintf("%s_%d", base, i)
	}
	b.taken[kind+":"+id] = true
	return id
}

func ref(p string) map[string]any { return map[string]any{"$ref": p} }

func correlationID() map[string]any {
	return map[string]any{"location": "$message.header#/correlation_id", "description": "correlation_id field (default: the entry ID)"}
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func baseName(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	return p
}
