package tracing

import (
	"cmp"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/msgroute/gateway/internal/testenv"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestExportsToOTLPReceiver: spans reach a real OTLP/HTTP receiver, at
// the standard path under a base URL, with the gateway's resource.
func TestExportsToOTLPReceiver(t *testing.T) {
	rcv := testenv.StartOTLP(t)
	p, err := New(Config{Endpoint: rcv.URL, ServiceVersion: "1.2.3", Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	_, span := p.Tracer().Start(context.Background(), "process")
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	spans := rcv.Spans()
	if len(spans) != 1 || spans[0].GetName() != "process" {
		t.Fatalf("received %d spans, want 1 named process", len(spans))
	}
	if r := spans[0].Resource; r["service.name"] != "gateway" || r["service.version"] != "1.2.3" {
		t.Errorf("resource = %v, want service.name gateway, service.version 1.2.3", r)
	}
}

// TestSlowCollectorNeverBlocks: with the collector hanging, recording
// spans goes on at full speed; what does not fit the queue is dropped.
func TestSlowCollectorNeverBlocks(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	p, err := New(Config{Endpoint: srv.URL, QueueSize: 16, BatchTimeout: time.Millisecond, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	tr := p.Tracer()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 100000 {
			_, s := tr.Start(context.Background(), "process")
			s.End()
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("recording 100000 spans did not finish within 30s: the hot path waits for the exporter")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_ = p.Shutdown(ctx) // the collector still hangs: the final export times out
}

func TestConfigFill(t *testing.T) {
	tests := []struct {
		name, endpoint, want string
		ratio                float64
		wantErr              bool
	}{
		{"base url gets the standard path", "http://c:4318", "http://c:4318/v1/traces", 0, false},
		{"slash gets the standard path", "https://c:4318/", "https://c:4318/v1/traces", 0.5, false},
		{"explicit path kept", "http://c:4318/otlp/v1/traces", "http://c:4318/otlp/v1/traces", 1, false},
		{"no scheme", "c:4318", "", 0, true},
		{"empty", "", "", 0, true},
		{"ratio above 1", "http://c:4318", "", 2, true},
		{"negative ratio", "http://c:4318", "", -0.1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{Endpoint: tt.endpoint, SampleRatio: tt.ratio}
			err := c.fill()
			if (err != nil) != tt.wantErr {
				t.Fatalf("fill(%q, %v) error = %v, want error %v", tt.endpoint, tt.ratio, err, tt.wantErr)
			}
			if err == nil && (c.Endpoint != tt.want || c.SampleRatio != cmp.Or(tt.ratio, 1)) {
				t.Errorf("fill(%q, %v) = %q ratio %v, want %q ratio %v", tt.endpoint, tt.ratio, c.Endpoint, c.SampleRatio, tt.want, cmp.Or(tt.ratio, 1))
			}
		})
	}
}
