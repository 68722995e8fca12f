package dispatch

import (
	"testing"

	"github.com/msgroute/gateway/router"
)

const (
	goodParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	goodState  = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
)

func TestValidTraceParent(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"w3c example", goodParent, true},
		{"not sampled", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00", true},
		{"future version with more fields", "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-xyz", true},
		{"version 00 with more fields", goodParent + "-xyz", false},
		{"version ff", "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", false},
		{"upper-case hex", "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01", false},
		{"zero trace id", "00-00000000000000000000000000000000-b7ad6b7169203331-01", false},
		{"zero parent id", "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", false},
		{"short trace id", "00-0af7651916cd43dd8448eb211c8031-b7ad6b7169203331-01", false},
		{"wrong separator", "00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", false},
		{"CRLF injection", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\nX-Evil: 1", false},
		{"empty", "", false},
		{"garbage", "hello", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidTraceParent(tt.in); got != tt.want {
				t.Errorf("ValidTraceParent(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

// TestDoForwardsTraceContext sends entries with trace context fields to a
// real HTTP server: they arrive as the standard traceparent/tracestate
// headers, never as X-Msg-* attributes, and malformed ones are dropped
// and counted.
func TestDoForwardsTraceContext(t *testing.T) {
	addr, got := server(t, 200)
	d, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                  string
		parent, state         string
		wantParent, wantState string
		wantDropped           int
	}{
		{"both", goodParent, goodState, goodParent, goodState, 0},
		{"parent only", goodParent, "", goodParent, "", 0},
		{"none", "", "", "", "", 0},
		{"malformed parent drops its state", "00-xyz-01", goodState, "", "", 2},
		{"malformed parent alone", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331", "", "", "", 1},
		{"state without parent", "", goodState, "", "", 1},
		{"state with a control byte", goodParent, "a=b\x00", goodParent, "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fields := map[string]string{"payload": "{}", "tenant": "acme"}
			if tt.parent != "" {
				fields["traceparent"] = tt.parent
			}
			if tt.state != "" {
				fields["tracestate"] = tt.state
			}
			m := msg(fields)
			res, err := d.Do(&router.Request{Addr: addr, Method: "POST", Path: "/t", Route: "r", Msg: m, Attempt: 1,
				TraceParent: m.TraceParent, TraceState: m.TraceState})
			if err != nil {
				t.Fatal(err)
			}
			if res.Dropped != tt.wantDropped {
				t.Errorf("Dropped = %d, want %d", res.Dropped, tt.wantDropped)
			}
			r := <-got
			if g := string(r.Header.Peek("traceparent")); g != tt.wantParent {
				t.Errorf("traceparent = %q, want %q", g, tt.wantParent)
			}
			if g := string(r.Header.Peek("tracestate")); g != tt.wantState {
				t.Errorf("tracestate = %q, want %q", g, tt.wantState)
			}
			for _, h := range []string{"X-Msg-Traceparent", "X-Msg-Tracestate"} {
				if g := r.Header.Peek(h); g != nil {
					t.Errorf("%s = %q, want none (trace context is not an attribute)", h, g)
				}
			}
			if g := string(r.Header.Peek("X-Msg-Tenant")); g != "acme" {
				t.Errorf("X-Msg-Tenant = %q, want acme", g)
			}
		})
	}
}
