package router

import (
	"errors"
	"time"

	"github.com/msgroute/gateway/rules"
)

// The pipeline's own vocabulary. Adapters (the Redis Streams group, the
// HTTP dispatcher) import these types and implement the interfaces in
// router.go; the router imports no adapter.

// Entry is one stream entry handed to the pipeline.
type Entry struct {
	Stream string
	ID     string
	// Fields are the entry's fields; nil when the entry was deleted from
	// the stream while pending.
	Fields map[string]string
	// Deliveries is Redis's delivery counter for this entry in the group,
	// 1 on first delivery.
	Deliveries int64
	// Redelivered is set on entries that were pending before this read
	// (claimed, or re-read from this consumer's backlog): they may have
	// been worked on already. Deliveries alone cannot tell, because a
	// wait for capacity or instances sets the counter back.
	Redelivered bool
}

// ErrNoGroup means the stream or its consumer group does not exist (any
// more); a Source returns it wrapped, and the router re-creates the group.
var ErrNoGroup = errors.New("consumer group missing")

// Request is one attempt to deliver a message over one route to one
// instance. The Sender must not keep it after Do returns.
type Request struct {
	Addr    string // instance host:port
	Method  string
	Path    string // origin-form, checked with rules.ValidPath
	Route   string
	Msg     *rules.Message
	Attempt int // 1-based, X-Delivery-Attempt
	// Timeout bounds the attempt (connection wait, write and answer);
	// zero means the Sender's default.
	Timeout time.Duration
	// Start is when the attempt began (the router's clock read for the
	// pick, just before Do): the Sender counts Timeout from it, and saves
	// a clock read. Zero: from when Do is called.
	Start time.Time
	// KeepBody asks for the response body (request-reply).
	KeepBody bool
	// TraceParent and TraceState are the W3C trace context sent as the
	// traceparent and tracestate headers: the entry's own, or the
	// attempt span's when tracing is on. Empty: not sent. The Sender
	// checks them; a malformed traceparent is not sent (nor its
	// tracestate) and counts in Result.Dropped.
	TraceParent, TraceState string
}

// Result is an instance's answer to one Request.
type Result struct {
	Status      int
	Body        []byte // only with KeepBody
	ContentType string // only with KeepBody
	// Truncated is set when the answer's body was larger than the Sender
	// keeps: Body holds its beginning (KeepBody) or nothing. The answer
	// still counts by its status.
	Truncated bool
	// Dropped counts attributes (and trace context fields) not forwarded
	// because their name or value is not a valid HTTP header (or not a
	// W3C traceparent).
	Dropped int
}

// ErrBadPath means the resolved path would not address the chosen
// instance; a Sender returns it wrapped, and the route is dead-lettered.
var ErrBadPath = errors.New("path does not address the instance")
