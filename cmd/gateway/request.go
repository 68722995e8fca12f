package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/msgroute/gateway/internal/streams"
)

// messageFlags are the flags publish and request share.
type messageFlags struct {
	fs      *flag.FlagSet
	file    *string
	stream  *string
	payload *string
	fields  fieldFlags
}

func newMessageFlags(name string, stderr io.Writer) *messageFlags {
	m := &messageFlags{fs: flag.NewFlagSet(name, flag.ContinueOnError), fields: fieldFlags{}}
	m.fs.SetOutput(stderr)
	m.file = m.fs.String("config", "configs/gateway.yaml", "config file (for the Redis connection)")
	m.stream = m.fs.String("stream", "", "stream to publish on (required)")
	m.payload = m.fs.String("payload", "", "payload: JSON text, or @file")
	m.fs.Var(m.fields, "field", "field key=value (repeatable)")
	return m
}

// parse parses args and checks the shared flags; it prints usage problems
// itself and returns exit code 2 for them.
func (m *messageFlags) parse(args []string, stderr io.Writer) error {
	if err := m.fs.Parse(args); err != nil {
		return exitError{2}
	}
	if *m.stream == "" {
		fmt.Fprintf(stderr, "gateway %s: --stream is required\n", m.fs.Name())
		return exitError{2}
	}
	if m.fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gateway %s: unexpected argument %q\n", m.fs.Name(), m.fs.Arg(0))
		return exitError{2}
	}
	return m.fields.setPayload(*m.payload)
}

// cmdPublish XADDs one message and prints its entry ID.
func cmdPublish(args []string, stdout, stderr io.Writer) error {
	m := newMessageFlags("publish", stderr)
	if err := m.parse(args, stderr); err != nil {
		return err
	}
	o, err := openOneShot(*m.file, stderr)
	if err != nil {
		return err
	}
	defer o.close()
	id, err := streams.Publish(o.ctx, o.rdb, *m.stream, m.fields)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, id)
	return nil
}

// cmdRequest publishes with a fresh reply_to and correlation_id, waits for
// the replies and prints each as a JSON object on its own line. Exit 0 when
// every reply says delivered, 1 otherwise, 2 on timeout (replies received
// so far are printed).
func cmdRequest(args []string, stdout, stderr io.Writer) error {
	m := newMessageFlags("request", stderr)
	timeout := m.fs.Duration("timeout", 30*time.Second, "how long to wait for the replies")
	replies := m.fs.Int("replies", 1, "replies to wait for (one per route the message takes)")
	if err := m.parse(args, stderr); err != nil {
		return err
	}
	if *timeout <= 0 || *replies <= 0 {
		fmt.Fprintln(stderr, "gateway request: --timeout and --replies must be positive")
		return exitError{2}
	}
	o, err := openOneShot(*m.file, stderr)
	if err != nil {
		return err
	}
	defer o.close()
	res, err := streams.Request(o.ctx, o.rdb, streams.RequestConfig{
		Stream: *m.stream, Fields: m.fields, Timeout: *timeout, Replies: *replies,
	})
	enc := json.NewEncoder(stdout)
	for _, r := range res.Replies {
		if werr := enc.Encode(r); werr != nil {
			return werr
		}
	}
	switch {
	case errors.Is(err, streams.ErrReplyTimeout):
		fmt.Fprintf(stderr, "gateway request: %v (message %s)\n", err, res.ID)
		return exitError{2}
	case err != nil:
		return err
	}
	for _, r := range res.Replies {
		if r["outcome"] != "delivered" {
			return exitError{1}
		}
	}
	return nil
}
