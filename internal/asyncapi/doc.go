// Package asyncapi renders the gateway's message contracts as an AsyncAPI
// 3.0 document: consumed streams become channels, each route an operation
// (the gateway receives the stream's messages and forwards them to the
// route's service, method and path, given as x- extensions), each route's
// JSON Schema the payload of its message, and the entry fields of the
// contract the message headers. Request-reply, on_failure events and the
// dead-letter stream are described too.
//
// It is pure: the caller reads config, rules and schema files and passes
// plain values (Spec), so routes from other sources (subscriptions) are
// just more entries of Spec.Routes.
package asyncapi
