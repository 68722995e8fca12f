package rules

import "cmp"

// Reserved stream entry fields. Every other field is an attribute.
const (
	FieldPayload       = "payload"
	FieldContentType   = "content_type"
	FieldCorrelationID = "correlation_id"
	FieldReplyTo       = "reply_to"
	// W3C trace context: forwarded as the traceparent and tracestate
	// headers, and the parent of the gateway's span when tracing is on.
	FieldTraceParent = "traceparent"
	FieldTraceState  = "tracestate"
	// Written by `gateway dlq replay`: the entry is a replay of entry
	// FieldReplayOf of stream FieldReplayStream, for route FieldReplayRoute
	// only (empty: every route it matches). Not attributes.
	FieldReplayOf     = "gateway_replay_of"
	FieldReplayStream = "gateway_replay_stream"
	FieldReplayRoute  = "gateway_replay_route"
)

// DefaultContentType is the content type of a message that does not name one.
const DefaultContentType = "application/json"

// Message is one stream entry as the rules see it. A Message is not modified
// by Match or Explain, so one value may be matched concurrently.
type Message struct {
	Stream, ID    string
	Payload       string            // field "payload"
	ContentType   string            // field "content_type", default DefaultContentType
	CorrelationID string            // field "correlation_id", default ID
	ReplyTo       string            // field "reply_to"
	TraceParent   string            // field "traceparent", as written (not checked)
	TraceState    string            // field "tracestate"
	Headers       map[string]string // every other field (attributes); nil when there are none
	Deliveries    int64             // 1 on first delivery
	// ReplayRoute is the only route a replayed dead letter may take
	// (field gateway_replay_route); empty for other messages.
	ReplayRoute string
	spare       map[string]string // attribute map kept for Reset
}

// NewMessage builds a Message from a stream entry's fields, splitting reserved
// fields from attributes and filling defaults. fields is not retained. A
// replayed dead letter (field gateway_replay_of) is the Message of its
// original entry: Stream and ID are the original's (gateway_replay_stream,
// gateway_replay_of), so rules see it, and services receive it (X-Message-Id,
// X-Stream, Idempotency-Key), as the entry it replays.
func NewMessage(stream, id string, fields map[string]string, deliveries int64) *Message {
	m := &Message{}
	m.Reset(stream, id, fields, deliveries)
	return m
}

// Reset makes m the Message of another entry, as NewMessage would, reusing
// the storage of m's attribute map. The previous Headers map is reused, so
// no one may hold it any more.
func (m *Message) Reset(stream, id string, fields map[string]string, deliveries int64) {
	h := m.Headers
	if h == nil {
		h = m.spare
	}
	if len(h) > 0 {
		clear(h)
	}
	*m = Message{ContentType: DefaultContentType, Deliveries: deliveries, spare: h}
	// One pass over fields (the reserved ones are rare beside payload):
	// the replay fields and correlation_id are applied after it, since
	// they depend on each other.
	var corr, replayOf, replayStream string
	for k, v := range fields {
		switch k {
		case FieldPayload:
			m.Payload = v
		case FieldContentType:
			if v != "" {
				m.ContentType = v
			}
		case FieldCorrelationID:
			corr = v
		case FieldReplyTo:
			m.ReplyTo = v
		case FieldTraceParent:
			m.TraceParent = v
		case FieldTraceState:
			m.TraceState = v
		case FieldReplayOf:
			replayOf = v
		case FieldReplayStream:
			replayStream = v
		case FieldReplayRoute:
			m.ReplayRoute = v
		default:
			if m.Headers == nil {
				if m.spare == nil {
					m.spare = make(map[string]string, len(fields))
				}
				m.Headers = m.spare
			}
			m.Headers[k] = v
		}
	}
	if replayOf != "" {
		id = replayOf
		if replayStream != "" {
			stream = replayStream
		}
	}
	m.Stream, m.ID = stream, id
	m.CorrelationID = cmp.Or(corr, id)
}

func isReserved(field string) bool {
	switch field {
	case FieldPayload, FieldContentType, FieldCorrelationID, FieldReplyTo,
		FieldTraceParent, FieldTraceState, FieldReplayOf, FieldReplayStream, FieldReplayRoute:
		return true
	}
	return false
}
