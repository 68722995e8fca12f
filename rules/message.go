package rules

// Reserved stream entry fields. Every other field is an attribute.
const (
	FieldPayload       = "payload"
	FieldContentType   = "content_type"
	FieldCorrelationID = "correlation_id"
	FieldReplyTo       = "reply_to"
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
	clear(h)
	if of := fields[FieldReplayOf]; of != "" {
		id = of
		if st := fields[FieldReplayStream]; st != "" {
			stream = st
		}
	}
	*m = Message{
		Stream:        stream,
		ID:            id,
		ContentType:   DefaultContentType,
		CorrelationID: id,
		Deliveries:    deliveries,
		spare:         h,
	}
	attrs := 0
	for k := range fields {
		if !isReserved(k) {
			attrs++
		}
	}
	if attrs > 0 {
		if h == nil {
			h = make(map[string]string, attrs)
			m.spare = h
		}
		m.Headers = h
	}
	for k, v := range fields {
		switch k {
		case FieldPayload:
			m.Payload = v
		case FieldContentType:
			if v != "" {
				m.ContentType = v
			}
		case FieldCorrelationID:
			if v != "" {
				m.CorrelationID = v
			}
		case FieldReplyTo:
			m.ReplyTo = v
		case FieldReplayOf, FieldReplayStream:
		case FieldReplayRoute:
			m.ReplayRoute = v
		default:
			m.Headers[k] = v
		}
	}
}

func isReserved(field string) bool {
	switch field {
	case FieldPayload, FieldContentType, FieldCorrelationID, FieldReplyTo,
		FieldReplayOf, FieldReplayStream, FieldReplayRoute:
		return true
	}
	return false
}
