package asyncapi

// str is a string-valued schema property.
func str(desc string) map[string]any { return map[string]any{"type": "string", "description": desc} }

// fixedSchemas are the header schemas of the contract's entry, reply,
// failure-event and dead-letter fields (AsyncAPI Schema Objects).
func fixedSchemas() map[string]any {
	attrs := map[string]any{"type": "string",
		"description": "any other field is an attribute: headers.<field> in rules, HTTP header X-Msg-<Field>"}
	entry := map[string]any{
		"payload":        str("the message body (the HTTP request body); described by the message's payload"),
		"content_type":   map[string]any{"type": "string", "default": "application/json", "description": "Content-Type of the payload"},
		"correlation_id": str("default: the entry ID; sent as X-Correlation-Id"),
		"reply_to":       str("stream the gateway writes a reply to for every final outcome of each route"),
		"traceparent":    str("W3C trace context, forwarded as traceparent"),
		"tracestate":     str("W3C trace context, forwarded as tracestate"),
	}
	failure := map[string]any{
		"failed_route":  str("the route that dead-lettered the message"),
		"failed_stream": str("the stream the message was read from"),
		"failed_id":     str("the message's entry ID"),
		"failed_reason": map[string]any{"type": "string", "enum": dlqReasons(), "description": "the dlq_reason"},
		"failed_status": str("last HTTP status, or empty"),
		"failed_error":  str("what went wrong"),
	}
	for k, v := range entry {
		failure[k] = v
	}
	dead := map[string]any{
		"dlq_reason":   map[string]any{"type": "string", "enum": dlqReasons()},
		"dlq_stream":   str("original stream"),
		"dlq_id":       str("original entry ID"),
		"dlq_route":    str("route that dead-lettered it; empty for no_route"),
		"dlq_status":   str("last HTTP status, or empty"),
		"dlq_error":    str("what went wrong"),
		"dlq_attempts": str("deliveries (Redis's delivery count)"),
		"dlq_at":       str("unix milliseconds"),
	}
	for k, v := range entry {
		dead[k] = v
	}
	return map[string]any{
		entryHeaders: map[string]any{
			"type": "object", "description": "the fields of a stream entry (CONTRACT: Messages on Redis Streams)",
			"properties": entry, "additionalProperties": attrs,
		},
		replyHeaders: map[string]any{
			"type": "object", "required": []any{"correlation_id", "outcome", "status", "payload", "content_type", "route", "message_id"},
			"properties": map[string]any{
				"correlation_id": str("the request's correlation_id"),
				"outcome":        map[string]any{"type": "string", "enum": []any{"delivered", "dead_lettered"}},
				"status":         str("HTTP status, or empty"),
				"payload":        str("response body; empty when dead-lettered"),
				"payload_truncated": map[string]any{"type": "string", "enum": []any{"true"},
					"description": "present when the answer was larger than the gateway keeps (payload is its beginning)"},
				"content_type": str("response Content-Type"),
				"route":        str("the route this reply is about (one reply per route on fan-out)"),
				"message_id":   str("the request's entry ID"),
				"error":        str("when dead-lettered: what went wrong"),
				"dlq_reason":   map[string]any{"type": "string", "enum": dlqReasons(), "description": "when dead-lettered"},
			},
		},
		failureHeaders: map[string]any{"type": "object", "properties": failure, "additionalProperties": attrs,
			"required": []any{"failed_route", "failed_stream", "failed_id", "failed_reason", "failed_status", "failed_error"}},
		deadLetterHdrs: map[string]any{"type": "object", "properties": dead, "additionalProperties": attrs},
	}
}

func dlqReasons() []any {
	return []any{"no_route", "permanent_error", "max_deliveries", "bad_message", "schema"}
}
