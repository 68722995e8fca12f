package testenv

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// OTLP is an in-process OTLP/HTTP trace receiver: it accepts POST
// /v1/traces with protobuf bodies (gzip or not), as an OpenTelemetry
// Collector does, and keeps the spans it decoded.
type OTLP struct {
	// URL is the receiver's base URL (http://127.0.0.1:port), what
	// tracing.otlp_endpoint takes.
	URL   string
	mu    sync.Mutex
	spans []Span
}

// Span is one received span with the resource it came from.
type Span struct {
	*tracepb.Span
	// Resource holds the string attributes of the span's resource
	// (service.name, service.version...).
	Resource map[string]string
}

// StartOTLP starts a receiver on a free loopback port, stopped at the end
// of the test. Bodies that do not decode fail the test.
func StartOTLP(t testing.TB) *OTLP {
	t.Helper()
	o := &OTLP{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
			http.NotFound(w, r)
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			gz, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = gz
		}
		b, err := io.ReadAll(body)
		req := &coltrace.ExportTraceServiceRequest{}
		if err == nil {
			err = proto.Unmarshal(b, req)
		}
		if err != nil {
			t.Errorf("otlp receiver: bad export request: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		o.add(req)
		out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(srv.Close)
	o.URL = srv.URL
	return o
}

func (o *OTLP) add(req *coltrace.ExportTraceServiceRequest) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		res := map[string]string{}
		for _, kv := range rs.GetResource().GetAttributes() {
			res[kv.GetKey()] = kv.GetValue().GetStringValue()
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				o.spans = append(o.spans, Span{Span: s, Resource: res})
			}
		}
	}
}

// Spans returns the spans received so far, in arrival order.
func (o *OTLP) Spans() []Span {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]Span(nil), o.spans...)
}

// Attrs returns s's attributes rendered as strings (ints in decimal,
// string slices joined with commas).
func (s Span) Attrs() map[string]string {
	out := map[string]string{}
	for _, kv := range s.GetAttributes() {
		v := kv.GetValue()
		switch v.GetValue().(type) {
		case *commonpb.AnyValue_IntValue:
			out[kv.GetKey()] = strconv.FormatInt(v.GetIntValue(), 10)
		case *commonpb.AnyValue_ArrayValue:
			var items []string
			for _, e := range v.GetArrayValue().GetValues() {
				items = append(items, e.GetStringValue())
			}
			out[kv.GetKey()] = strings.Join(items, ",")
		default:
			out[kv.GetKey()] = v.GetStringValue()
		}
	}
	return out
}
