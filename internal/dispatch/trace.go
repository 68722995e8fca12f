package dispatch

import "github.com/valyala/fasthttp"

// addTrace sets the W3C trace context headers of r (traceparent,
// tracestate) and returns how many of them were not forwarded. A
// traceparent that is not in the W3C format is dropped with its
// tracestate, as the recommendation says: a tracestate means nothing
// without its parent. A tracestate alone is dropped too.
func addTrace(h *fasthttp.RequestHeader, parent, state string) int {
	if parent == "" {
		if state != "" {
			return 1
		}
		return 0
	}
	if !ValidTraceParent(parent) {
		if state != "" {
			return 2
		}
		return 1
	}
	h.Add("traceparent", parent)
	if state == "" {
		return 0
	}
	if !validValue(state) {
		return 1
	}
	h.Add("tracestate", state)
	return 0
}

// ValidTraceParent reports whether s is a W3C traceparent header value:
// version-traceid-parentid-flags in lower-case hex, 2-32-16-2 digits,
// version not ff, trace and parent IDs not all zero. A version above 00
// may carry more fields after the flags (the recommendation's forward
// compatibility); version 00 may not.
func ValidTraceParent(s string) bool {
	if len(s) < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return false
	}
	if !lowerHex(s[0:2]) || s[0:2] == "ff" || !lowerHex(s[3:35]) || !lowerHex(s[36:52]) || !lowerHex(s[53:55]) {
		return false
	}
	if allZero(s[3:35]) || allZero(s[36:52]) {
		return false
	}
	if len(s) > 55 {
		return s[0:2] != "00" && s[55] == '-' && validValue(s)
	}
	return true
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func allZero(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '0' {
			return false
		}
	}
	return true
}
