package dispatch

import (
	"fmt"
	"strconv"
	"strings"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/msgroute/gateway/router"
	"github.com/msgroute/gateway/rules"
)

// build fills req with r: method, path, Host, and the CONTRACT's headers
// (Content-Type, X-Message-Id, X-Stream, X-Route, X-Correlation-Id,
// Idempotency-Key, X-Delivery-Attempt, traceparent, tracestate, X-Msg-*
// attributes); the body is the
// message's payload (fasthttp adds Content-Length and User-Agent). It
// returns how many attributes were not forwarded. Every name and value is
// checked (tokens; no CR, LF or other control bytes), so nothing in an
// entry can split the request or add a header of its own; the path and
// method are checked with the rules' own validators, as at rule loading.
func build(req *fasthttp.Request, r *router.Request) (int, error) {
	m := r.Msg
	if !rules.ValidPath(r.Path) || !rules.ValidToken(r.Method) {
		return 0, fmt.Errorf("%q: %w", r.Path, router.ErrBadPath)
	}
	dropped := 0
	// content_type and correlation_id come from the stream's writers like
	// attributes do; a value a strict server would reject falls back to the
	// default instead of getting the message dead-lettered as a 400.
	ct, corr := m.ContentType, m.CorrelationID
	if !validValue(ct) {
		ct, dropped = "application/octet-stream", dropped+1
	}
	if !validValue(corr) {
		corr, dropped = m.ID, dropped+1
	}
	h := &req.Header
	h.DisableNormalizing() // names below are written in canonical form
	h.SetMethod(r.Method)
	h.SetHost(clean(r.Addr)) // before the URI is parsed: it takes its host from here
	req.SetRequestURI(r.Path)
	req.URI().DisablePathNormalizing = true
	h.SetContentType(ct)
	stream, id, route := clean(m.Stream), clean(m.ID), clean(r.Route)
	// The gateway's own header names are canonical, valid and distinct
	// from each other and from the special ones (Host, Content-Type, ...),
	// so SetCanonical (no copy, check or normalization of the name) sends
	// what Add would.
	h.SetCanonical([]byte("X-Message-Id"), s2b(id))
	h.SetCanonical([]byte("X-Stream"), s2b(stream))
	h.SetCanonical([]byte("X-Route"), s2b(route))
	h.SetCanonical([]byte("X-Correlation-Id"), s2b(corr))
	var scratch [256]byte
	b := append(scratch[:0], stream...)
	b = append(b, '/')
	b = append(b, id...)
	b = append(b, '/')
	b = append(b, route...)
	h.SetCanonical([]byte("Idempotency-Key"), b)
	h.SetCanonical([]byte("X-Delivery-Attempt"), strconv.AppendInt(scratch[:0], int64(r.Attempt), 10))
	dropped += addTrace(h, r.TraceParent, r.TraceState)
	for k, v := range m.Headers {
		if !rules.ValidToken(k) || !validValue(v) {
			dropped++
			continue
		}
		h.AddBytesK(appendAttrHeader(scratch[:0], k), v)
	}
	req.SetBodyString(m.Payload)
	return dropped, nil
}

// clean returns a header value the gateway itself chose (stream, route,
// entry ID, address) with any control byte turned into a space: they come
// from configuration and Redis, never expected to hold one.
func clean(v string) string {
	if !hasControl(v) {
		return v
	}
	return strings.Map(func(c rune) rune {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return ' '
		}
		return c
	}, v)
}

// appendAttrHeader renders attribute k as the header name X-Msg-K in
// canonical form (order_id -> X-Msg-Order_id, region -> X-Msg-Region).
func appendAttrHeader(dst []byte, k string) []byte {
	dst = append(dst, "X-Msg-"...)
	upper := true
	for i := 0; i < len(k); i++ {
		c := k[i]
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
		upper = c == '-'
	}
	return dst
}

// maxValue bounds an attribute's value; larger ones are dropped.
const maxValue = 8 << 10

// validValue rejects CR, LF, NUL and other control bytes (HTAB allowed),
// and values over 8 KiB.
func validValue(s string) bool { return len(s) <= maxValue && !hasControl(s) }

// s2b is s as a byte slice without a copy, for fasthttp setters that only
// copy from it (the header keeps its own copy): nothing may write to it.
func s2b(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// hasControl reports whether s holds a control byte other than HTAB.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return true
		}
	}
	return false
}
