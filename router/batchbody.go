package router

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// The batch request and answer documents (CONTRACT "Batches", the shape of
// Dapr's bulk subscribe):
//
//	{"entries":[{"entryId":ID,"stream":S,"contentType":CT,"payload":P,
//	  "metadata":{"idempotency_key":K,"correlation_id":C,"delivery_attempt":"N",
//	  ["traceparent":TP,"tracestate":TS,]ATTRS...}}]}
//	{"statuses":[{"entryId":ID,"status":"SUCCESS"|"RETRY"|"DROP"}]}
//
// The request is built by appending, not by encoding/json: a batch of 100
// ~300-byte orders is ~50 KB, and json.Marshal of a struct would copy every
// payload through json.RawMessage validation and reflection. Strings are
// escaped as encoding/json escapes them (TestAppendJSONString holds the
// two to the same decoded text).

// Per-entry statuses of a batch answer, upper case.
const (
	statusSuccess = "SUCCESS"
	statusRetry   = "RETRY"
	statusDrop    = "DROP"
)

// Metadata keys the gateway sets; attributes of the same name are left
// out of metadata so that every key appears once.
const (
	metaIdempotencyKey  = "idempotency_key"
	metaCorrelationID   = "correlation_id"
	metaDeliveryAttempt = "delivery_attempt"
)

// appendBatchBody renders the request document for items over route.
func appendBatchBody(dst []byte, route string, items []batchItem) []byte {
	dst = append(dst, `{"entries":[`...)
	for i := range items {
		if i > 0 {
			dst = append(dst, ',')
		}
		m := items[i].msg
		dst = append(dst, `{"entryId":`...)
		dst = appendJSONString(dst, m.ID)
		dst = append(dst, `,"stream":`...)
		dst = appendJSONString(dst, m.Stream)
		dst = append(dst, `,"contentType":`...)
		dst = appendJSONString(dst, m.ContentType)
		dst = append(dst, `,"payload":`...)
		dst = appendPayload(dst, m.Payload, items[i].json)
		dst = append(dst, `,"metadata":{"`+metaIdempotencyKey+`":"`...)
		dst = appendJSONStringBody(dst, m.Stream)
		dst = append(dst, '/')
		dst = appendJSONStringBody(dst, m.ID)
		dst = append(dst, '/')
		dst = appendJSONStringBody(dst, route)
		dst = append(dst, `","`+metaCorrelationID+`":`...)
		dst = appendJSONString(dst, m.CorrelationID)
		dst = append(dst, `,"`+metaDeliveryAttempt+`":"`...)
		dst = strconv.AppendInt(dst, int64(items[i].attempt), 10)
		dst = append(dst, '"')
		// An entry's trace context travels with it, as the standard
		// names (single requests send them as headers).
		if m.TraceParent != "" {
			dst = append(dst, `,"traceparent":`...)
			dst = appendJSONString(dst, m.TraceParent)
		}
		if m.TraceState != "" {
			dst = append(dst, `,"tracestate":`...)
			dst = appendJSONString(dst, m.TraceState)
		}
		for k, v := range m.Headers {
			if k == metaIdempotencyKey || k == metaCorrelationID || k == metaDeliveryAttempt {
				continue
			}
			dst = append(dst, ',')
			dst = appendJSONString(dst, k)
			dst = append(dst, ':')
			dst = appendJSONString(dst, v)
		}
		dst = append(dst, "}}"...)
	}
	return append(dst, "]}"...)
}

// appendPayload embeds payload as is when it is one JSON value, else as a
// JSON string. known says matching already found it JSON (rules.Match.JSON:
// a subset of what json.Valid accepts); otherwise it is validated in place,
// after appending, so no copy is made to check it.
func appendPayload(dst []byte, payload string, known bool) []byte {
	start := len(dst)
	dst = append(dst, payload...)
	if known || json.Valid(dst[start:]) {
		return dst
	}
	return appendJSONString(dst[:start], payload)
}

// appendJSONString appends s as a JSON string, escaped as encoding/json
// does without HTML escaping: quote, backslash and control bytes escaped,
// U+2028 and U+2029 escaped, invalid UTF-8 replaced by U+FFFD.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = appendJSONStringBody(dst, s)
	return append(dst, '"')
}

const hexDigits = "0123456789abcdef"

// appendJSONStringBody is appendJSONString without the quotes.
func appendJSONStringBody(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(dst, s[start:]...)
}
