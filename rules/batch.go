package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Batch is a route's batch delivery: up to MaxMessages messages of the
// route, collected for at most MaxWait after the first, go to one instance
// in one request (the shape of Dapr's bulk subscribe; see the router).
type Batch struct {
	// MaxMessages is the most entries in one request, 1..MaxBatchMessages.
	MaxMessages int
	// MaxWait is how long the first entry of a batch waits for more,
	// (0, MaxBatchWait]; DefaultBatchWait when the rules do not say.
	MaxWait time.Duration
}

// MarshalJSON renders b as written in the rules:
// {"max_messages":100,"max_wait":"5ms"}.
func (b Batch) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		MaxMessages int    `json:"max_messages"`
		MaxWait     string `json:"max_wait"`
	}{b.MaxMessages, b.MaxWait.String()})
}

// Batch limits and default.
const (
	MaxBatchMessages = 1000
	MaxBatchWait     = time.Second
	DefaultBatchWait = 5 * time.Millisecond
)

// parseBatch reads a route's batch mapping: {max_messages: N, max_wait: D}.
// max_messages is required; max_wait defaults to DefaultBatchWait.
func parseBatch(n *yaml.Node) (*Batch, error) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		return nil, errors.New("must be a mapping like {max_messages: 100, max_wait: 5ms}")
	}
	b := &Batch{MaxWait: DefaultBatchWait}
	var errs []error
	seenMax := false
	for _, pe := range mapping(n, func(key string, _, v *yaml.Node) {
		switch key {
		case "max_messages":
			seenMax = true
			m, err := scalarInt(v)
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("max_messages: %w", err))
			case m < 1 || m > MaxBatchMessages:
				errs = append(errs, fmt.Errorf("max_messages: %d is not in 1..%d", m, MaxBatchMessages))
			default:
				b.MaxMessages = m
			}
		case "max_wait":
			s, err := scalarString(v)
			if err != nil || s == "" {
				errs = append(errs, errors.New("max_wait: must be a duration like 5ms"))
				return
			}
			d, err := time.ParseDuration(s)
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("max_wait: %q is not a duration like 5ms", s))
			case d <= 0 || d > MaxBatchWait:
				errs = append(errs, fmt.Errorf("max_wait: %s must be more than 0 and at most %s", d, MaxBatchWait))
			default:
				b.MaxWait = d
			}
		default:
			errs = append(errs, fmt.Errorf("unknown key %q (want max_messages, max_wait)", key))
		}
	}) {
		errs = append(errs, errors.New(pe.msg))
	}
	if !seenMax {
		errs = append(errs, errors.New("max_messages is required"))
	}
	if len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Error()
		}
		return nil, errors.New(strings.Join(msgs, "; "))
	}
	return b, nil
}
