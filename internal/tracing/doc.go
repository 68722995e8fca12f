// Package tracing wires the OpenTelemetry SDK for the gateway: a tracer
// provider whose spans are batched and exported over OTLP/HTTP. The router
// only sees the API's trace.Tracer; this package owns the SDK, the
// exporter, the sampler and their shutdown.
package tracing
