package dispatch

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/msgroute/gateway/router"
	"github.com/msgroute/gateway/rules"
)

// FuzzBuild: building a request from hostile entry fields and a hostile
// resolved path never panics, never writes CR or LF inside a header line
// (no header injection or request splitting), and the request always goes to
// the chosen instance: the serialized request's one Host header names Addr,
// and it parses back as one request with the path and body it was given.
func FuzzBuild(f *testing.F) {
	f.Add("/orders/1", "POST", "type", "order.created", "application/json", "c-1", `{"a":1}`)
	f.Add("//evil.example/x", "GET", "x\r\nHost", "evil", "text/plain\r\nX-Evil: 1", "c\nX: y", "")
	f.Add("/a\r\nHost: evil", "PUT", "a b", "v\x00", "", "", "\xff\xfe")
	f.Add("/@evil.example", "POST", "Host", "evil.example", "", "", "")
	f.Add("/..%2f..%2fx?q=http://evil/", "POST", "content-length", "9999", "", "", "body")
	f.Add("http://evil.example/", "POST", "transfer-encoding", "chunked", "a\tb", "\x7f", "")
	f.Add("/%0d%0aX-Evil:%201", "POST", "X-Msg-A", strings.Repeat("v", 9000), "", "", "")
	const addr = "127.0.0.1:8080"
	f.Fuzz(func(t *testing.T, path, method, key, value, contentType, correlationID, payload string) {
		if !rules.ValidToken(method) {
			// Methods come from validated rule files, not from entries.
			method = "POST"
		}
		fields := map[string]string{
			key: value, rules.FieldPayload: payload,
			rules.FieldContentType: contentType, rules.FieldCorrelationID: correlationID,
		}
		m := rules.NewMessage("orders", "1700000000000-0", fields, 1)
		r := &router.Request{Addr: addr, Method: method, Path: path, Route: "r", Msg: m, Attempt: 1}
		req := fasthttp.AcquireRequest()
		defer fasthttp.ReleaseRequest(req)
		dropped, err := build(req, r)
		if err != nil {
			return
		}
		if dropped < 0 || dropped > len(m.Headers)+2 { // +2: content_type, correlation_id
			t.Fatalf("build: dropped = %d with %d attributes", dropped, len(m.Headers))
		}
		var raw bytes.Buffer
		if _, err := req.WriteTo(&raw); err != nil {
			t.Fatalf("build(path %q): request does not serialize: %v", path, err)
		}
		head, _, ok := bytes.Cut(raw.Bytes(), []byte("\r\n\r\n"))
		if !ok {
			t.Fatalf("build(path %q): serialized request has no header end:\n%q", path, raw.Bytes())
		}
		lines := bytes.Split(head, []byte("\r\n"))
		for i, line := range lines {
			if bytes.ContainsAny(line, "\r\n") {
				t.Fatalf("build: header line %d contains CR/LF: %q", i, line)
			}
			if i > 0 && !bytes.Contains(line, []byte(":")) {
				t.Fatalf("build: header line %d is not name: value: %q", i, line)
			}
		}
		hosts := 0
		for _, line := range lines[1:] {
			name, val, _ := bytes.Cut(line, []byte(":"))
			if bytes.EqualFold(bytes.TrimSpace(name), []byte("Host")) {
				hosts++
				if string(bytes.TrimSpace(val)) != addr {
					t.Fatalf("build(path %q): Host header %q, want %q", path, val, addr)
				}
			}
		}
		if hosts != 1 {
			t.Fatalf("build(path %q): %d Host headers in\n%q", path, hosts, head)
		}
		// The request must parse back as exactly one request for the same
		// host, path and body.
		var back fasthttp.Request
		br := bufio.NewReader(bytes.NewReader(raw.Bytes()))
		if err := back.Read(br); err != nil {
			t.Fatalf("build(path %q): serialized request does not parse: %v\n%q", path, err, raw.Bytes())
		}
		if got := string(back.Host()); got != addr {
			t.Fatalf("build(path %q): parsed Host = %q, want %q", path, got, addr)
		}
		if got := string(back.Header.RequestURI()); got != path {
			t.Fatalf("build: parsed path %q, want %q", got, path)
		}
		if string(back.Body()) != payload || br.Buffered() != 0 {
			t.Fatalf("build: parsed body %q (%d bytes left over), want %q", back.Body(), br.Buffered(), payload)
		}
	})
}

// TestBuildControlBytesInReservedFields: entry fields correlation_id and
// content_type come from whoever writes to the stream, like attributes.
// build used to set them raw: fasthttp turns CR and LF into spaces, but
// other control bytes (found by FuzzBuild: correlation_id "\x19") went out
// as they were, a strict server (Go's net/http, fasthttp) answers such a
// request with 400, and the gateway dead-letters it as permanent_error.
func TestBuildControlBytesInReservedFields(t *testing.T) {
	for _, tc := range []struct{ name, field, value string }{
		{"correlation_id control byte", rules.FieldCorrelationID, "\x19"},
		{"correlation_id NUL", rules.FieldCorrelationID, "a\x00b"},
		{"content_type control byte", rules.FieldContentType, "text/plain\x01"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := rules.NewMessage("orders", "1-0", map[string]string{tc.field: tc.value}, 1)
			req := fasthttp.AcquireRequest()
			defer fasthttp.ReleaseRequest(req)
			if _, err := build(req, &router.Request{Addr: "127.0.0.1:1", Method: "POST", Path: "/", Route: "r", Msg: m, Attempt: 1}); err != nil {
				return // refusing is acceptable too
			}
			var raw bytes.Buffer
			if _, err := req.WriteTo(&raw); err != nil {
				t.Fatal(err)
			}
			var back fasthttp.Request
			if err := back.Read(bufio.NewReader(&raw)); err != nil {
				t.Errorf("build(%s=%q): request a strict server rejects: %v", tc.field, tc.value, err)
			}
		})
	}
}
