package router

import (
	"encoding/json"
	"fmt"
	"strings"
)

// entryStatus is one entry's status in a batch answer, as the service
// wrote it (not upper-cased).
type entryStatus struct{ id, status string }

// batchAnswer is the document an instance answers a batch with.
type batchAnswer struct {
	Statuses []struct {
		EntryID string `json:"entryId"`
		Status  string `json:"status"`
	} `json:"statuses"`
}

// parseBatchAnswer returns the answer's statuses in document order. A
// document without statuses answers none (each entry is then RETRY); text
// that is not such a document is an error.
//
// The common answer, written by a JSON encoder (the two keys of each status
// and nothing else, plain ASCII strings), is read by scanAnswer without
// reflection or a string per field; anything else by encoding/json, whose
// rules (case-insensitive keys, null, escapes, other fields, invalid UTF-8)
// stay the reference: FuzzScanAnswer holds the two to the same statuses.
func parseBatchAnswer(body []byte) ([]entryStatus, error) {
	if out, ok := scanAnswer(body); ok {
		return out, nil
	}
	return decodeAnswer(body)
}

// decodeAnswer is parseBatchAnswer by encoding/json.
func decodeAnswer(body []byte) ([]entryStatus, error) {
	var a batchAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return nil, fmt.Errorf("batch answer is not a statuses document: %w", err)
	}
	out := make([]entryStatus, len(a.Statuses))
	for i, s := range a.Statuses {
		out[i] = entryStatus{id: s.EntryID, status: s.Status}
	}
	return out, nil
}

// scanAnswer reads an answer of exactly the form
//
//	{"statuses":[{"entryId":"ID","status":"ST"},...]}
//
// with JSON whitespace anywhere between tokens, the two keys of a status
// in either order, and strings of printable ASCII without escapes. ok is
// false for any other text, valid or not: encoding/json reads that. The
// strings are slices of one copy of body.
func scanAnswer(body []byte) (out []entryStatus, ok bool) {
	s := answerScanner{s: string(body)}
	if !s.lit(`{`) || !s.lit(`"statuses"`) || !s.lit(`:`) || !s.lit(`[`) {
		return nil, false
	}
	out = make([]entryStatus, 0, len(body)/48) // ~48 bytes a status
	if !s.lit(`]`) {
		for {
			var e entryStatus
			if !s.lit(`{`) || !s.field(&e) || !s.lit(`,`) || !s.field(&e) || !s.lit(`}`) {
				return nil, false
			}
			out = append(out, e)
			if s.lit(`]`) {
				break
			}
			if !s.lit(`,`) {
				return nil, false
			}
		}
	}
	if !s.lit(`}`) {
		return nil, false
	}
	s.space()
	return out, s.i == len(s.s)
}

// answerScanner is scanAnswer's read position.
type answerScanner struct {
	s string
	i int
}

// space skips JSON whitespace.
func (s *answerScanner) space() {
	for s.i < len(s.s) {
		switch s.s[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// lit skips whitespace, then tok if it is next.
func (s *answerScanner) lit(tok string) bool {
	s.space()
	if !strings.HasPrefix(s.s[s.i:], tok) {
		return false
	}
	s.i += len(tok)
	return true
}

// field reads `"entryId":STR` or `"status":STR` into e; each key may come
// once per status (found by its value: a key seen twice is refused).
func (s *answerScanner) field(e *entryStatus) bool {
	var dst *string
	switch {
	case s.lit(`"entryId"`):
		dst = &e.id
	case s.lit(`"status"`):
		dst = &e.status
	default:
		return false
	}
	if *dst != "" || !s.lit(`:`) || !s.lit(`"`) {
		return false
	}
	start := s.i
	for ; s.i < len(s.s); s.i++ {
		switch c := s.s[s.i]; {
		case c == '"':
			if s.i == start {
				return false // empty: cannot tell a repeated key
			}
			*dst = s.s[start:s.i]
			s.i++
			return true
		case c < 0x20 || c > 0x7e || c == '\\':
			return false
		}
	}
	return false
}
