package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Config configures tracing. Zero fields take the defaults stated.
type Config struct {
	// Endpoint is the OTLP/HTTP collector, e.g. http://otel-collector:4318
	// (config tracing.otlp_endpoint). A URL without a path gets the
	// standard /v1/traces; one with a path is used as it is. https
	// endpoints use TLS. Required: tracing off is no Provider at all.
	Endpoint string
	// SampleRatio is the share of new traces recorded (config
	// tracing.sample_ratio), in (0, 1]; default 1. A message whose entry
	// carries a traceparent follows its sampled flag instead.
	SampleRatio float64
	// ServiceVersion is the resource's service.version; default none.
	ServiceVersion string
	// QueueSize bounds the spans waiting for export; default 2048. When
	// full, new spans are dropped: the message path never waits for the
	// exporter.
	QueueSize int
	// BatchTimeout is the longest a span waits before its batch is sent;
	// default 5s (the SDK's).
	BatchTimeout time.Duration
	// Logger receives export failures; default slog.Default().
	Logger *slog.Logger
}

// ServiceName is the service.name of the gateway's spans.
const ServiceName = "gateway"

func (c *Config) fill() error {
	if c.Endpoint == "" {
		return errors.New("tracing: no endpoint")
	}
	u, err := url.Parse(c.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("tracing: endpoint %q: want http(s)://host:port", c.Endpoint)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
		c.Endpoint = u.String()
	}
	if c.SampleRatio == 0 {
		c.SampleRatio = 1
	}
	if c.SampleRatio < 0 || c.SampleRatio > 1 {
		return fmt.Errorf("tracing: sample ratio %v not in (0, 1]", c.SampleRatio)
	}
	if c.QueueSize == 0 {
		c.QueueSize = sdktrace.DefaultMaxQueueSize
	}
	if c.BatchTimeout == 0 {
		c.BatchTimeout = sdktrace.DefaultScheduleDelay * time.Millisecond
	}
	if c.QueueSize < 0 || c.BatchTimeout < 0 {
		return fmt.Errorf("tracing: negative setting in %+v", c)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Provider records the gateway's spans and exports them in batches.
// Safe for concurrent use.
type Provider struct {
	tp *sdktrace.TracerProvider
}

// New returns a Provider exporting to cfg.Endpoint. Nothing is sent until
// spans are recorded; an unreachable collector costs dropped spans, not
// delays.
func New(cfg Config) (*Provider, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(cfg.Endpoint))
	if err != nil {
		return nil, fmt.Errorf("tracing: exporter: %w", err)
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", ServiceName)}
	if cfg.ServiceVersion != "" {
		attrs = append(attrs, attribute.String("service.version", cfg.ServiceVersion))
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attrs...))
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	batch := sdktrace.NewBatchSpanProcessor(loggingExporter{exp, cfg.Logger},
		sdktrace.WithMaxQueueSize(cfg.QueueSize), sdktrace.WithBatchTimeout(cfg.BatchTimeout))
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithSpanProcessor(batch),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
	)
	return &Provider{tp: tp}, nil
}

// Tracer returns the tracer the router records its spans with.
func (p *Provider) Tracer() trace.Tracer {
	return p.tp.Tracer("github.com/msgroute/gateway/router")
}

// Shutdown exports the spans still queued, within ctx, and stops.
func (p *Provider) Shutdown(ctx context.Context) error {
	if err := p.tp.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: shutdown: %w", err)
	}
	return nil
}

// loggingExporter logs a failed export through slog, once per failed
// batch, and reports it handled: the SDK would otherwise hand it to otel's
// global error handler, which writes through the standard log package.
type loggingExporter struct {
	sdktrace.SpanExporter
	log *slog.Logger
}

func (e loggingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.SpanExporter.ExportSpans(ctx, spans)
	if err != nil {
		e.log.Warn("trace export failed; spans dropped", "spans", len(spans), "err", err)
	}
	return nil
}
