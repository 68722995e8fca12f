package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
)

// otlpSink is an OTLP/HTTP endpoint that accepts every export and
// discards it, for measuring what tracing costs the gateway without a
// collector's own cost (flag -otlp-sink). It counts what it was sent, so
// a run shows the spans did leave the gateway.
type otlpSink struct {
	URL             string
	requests, bytes atomic.Int64
	srv             *http.Server
}

func startOTLPSink() (*otlpSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("otlp sink: %w", err)
	}
	s := &otlpSink{URL: "http://" + ln.Addr().String()}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		s.requests.Add(1)
		s.bytes.Add(n)
		w.WriteHeader(http.StatusOK) // an empty body is a full success
	})}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *otlpSink) Close() error {
	fmt.Printf("otlp sink: %d exports, %.1f MiB\n", s.requests.Load(), float64(s.bytes.Load())/(1<<20))
	return s.srv.Close()
}
