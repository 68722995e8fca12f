package main

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/msgroute/gateway/internal/config"
	"github.com/msgroute/gateway/internal/tracing"
)

// traceShutdownTimeout bounds the export of the spans still queued when
// the gateway stops.
const traceShutdownTimeout = 5 * time.Second

// newTracer returns the router's tracer and the function that flushes it
// at shutdown (after the router drained). With tracing.otlp_endpoint
// unset the tracer is nil (tracing off) and flushing does nothing.
func newTracer(c config.Tracing, log *slog.Logger) (trace.Tracer, func(), error) {
	if c.OTLPEndpoint == "" {
		return nil, func() {}, nil
	}
	p, err := tracing.New(tracing.Config{Endpoint: c.OTLPEndpoint, SampleRatio: c.SampleRatio,
		ServiceVersion: version, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	flush := func() {
		ctx, cancel := context.WithTimeout(context.Background(), traceShutdownTimeout)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			log.Warn("exporting the last spans failed", "err", err)
		}
	}
	return p.Tracer(), flush, nil
}
