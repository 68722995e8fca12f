package router

import (
	"context"
	"strconv"
	"strings"

	"github.com/msgroute/gateway/rules"
)

// Reply outcomes (CONTRACT, request-reply).
const (
	replyDelivered    = "delivered"
	replyDeadLettered = "dead_lettered"
)

// failedPrefix marks the fields a failure event adds to the original ones.
const failedPrefix = "failed_"

// deadLetter settles one route of e (route is nil when the entry matched
// none) as dead-lettered. In order, each only if the previous succeeded:
//  1. the route's on_failure event, so a compensation is never lost;
//  2. the dead letter itself;
//  3. the requester's reply (outcome dead_lettered) when reply_to is set.
//
// Every write happens before the entry is acked (settle runs after
// process returns), and a failed write makes the route transient: the entry
// stays pending and the whole sequence runs again on its next delivery. A
// crash or a lost ack therefore repeats writes (an event or a dead letter
// may appear twice, with the same failed_id / dlq_id) but never skips one.
func (r *Router) deadLetter(ctx context.Context, e *Entry, msg *rules.Message, route *rules.Route, d dlqInfo) outcome {
	if route != nil && route.OnFailure != "" && !r.failureEvent(ctx, e, route.OnFailure, d) {
		return transient
	}
	if r.toDLQ(ctx, e, d) != deadLetter {
		return transient
	}
	if msg != nil && msg.ReplyTo != "" && !r.replyFailure(ctx, msg, d) {
		return transient
	}
	return deadLetter
}

// failureEvent XADDs to stream the entry's original fields plus the
// failed_* fields describing the dead letter, so rules can route it to a
// compensation like any other message.
func (r *Router) failureEvent(ctx context.Context, e *Entry, stream string, d dlqInfo) bool {
	fields := make([]string, 0, 2*len(e.Fields)+12)
	for k, v := range e.Fields {
		if strings.HasPrefix(k, failedPrefix) {
			continue // an event about an event: the new failure's fields win
		}
		fields = append(fields, k, v)
	}
	fields = append(fields,
		"failed_route", d.route, "failed_stream", e.Stream, "failed_id", e.ID,
		"failed_reason", d.reason, "failed_status", statusText(d.status), "failed_error", d.err)
	if _, err := r.deps.Publisher.Add(ctx, stream, 0, fields); err != nil {
		r.deps.Metrics.Errors.WithLabelValues("xadd_on_failure").Inc()
		r.log.Warn("failure event write failed; entry stays pending", "msg_id", e.ID, "stream", e.Stream,
			"route", d.route, "on_failure", stream, "err", err)
		return false
	}
	return true
}

// replyFailure tells the requester that a route of its message was
// dead-lettered.
func (r *Router) replyFailure(ctx context.Context, msg *rules.Message, d dlqInfo) bool {
	return r.writeReply(ctx, msg, d.route, []string{
		"correlation_id", msg.CorrelationID, "outcome", replyDeadLettered, "status", statusText(d.status),
		"payload", "", "content_type", "", "route", d.route, "message_id", msg.ID,
		"error", d.err, "dlq_reason", d.reason,
	})
}

// writeReply XADDs fields to the message's reply_to stream. A failure is
// counted and logged; the caller leaves the entry pending, so the reply is
// retried with it.
func (r *Router) writeReply(ctx context.Context, msg *rules.Message, route string, fields []string) bool {
	if _, err := r.deps.Publisher.Add(ctx, msg.ReplyTo, r.cfg.ReplyMaxLen, fields); err != nil {
		r.deps.Metrics.Replies.WithLabelValues("error").Inc()
		r.log.Warn("reply failed; message will be redelivered", "msg_id", msg.ID, "stream", msg.Stream, "route", route, "err", err)
		return false
	}
	r.deps.Metrics.Replies.WithLabelValues("ok").Inc()
	return true
}

// statusText renders an HTTP status for a stream field: "" when there was
// no answer.
func statusText(status int) string {
	if status == 0 {
		return ""
	}
	return strconv.Itoa(status)
}
