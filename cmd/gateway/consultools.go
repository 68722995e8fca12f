package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/msgroute/gateway/discovery"
	"github.com/msgroute/gateway/rules"
	"github.com/msgroute/gateway/subscriptions"
)

// consulTimeout bounds the one-shot Consul queries of check and explain.
const consulTimeout = 30 * time.Second

// registered composes file with the subscriptions the instances registered
// in the Consul agent at addr declare right now, as the gateway would
// (streams is the allow-list; nil allows every stream): those of passing
// instances, or of all instances unless passingOnly. It returns the
// composed set and every declaration's status.
func registered(addr string, file *rules.Set, streams []string, passingOnly bool) (*rules.Set, []subscriptions.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), consulTimeout)
	defer cancel()
	discard := slog.New(slog.DiscardHandler)
	insts, err := discovery.Snapshot(ctx, discovery.Config{Address: addr, Logger: discard}, passingOnly)
	if err != nil {
		return nil, nil, err
	}
	set := file
	reg := subscriptions.New(subscriptions.Config{Streams: streams, Logger: discard}, file,
		subscriptions.Deps{Publish: func(s *rules.Set) { set = s }})
	reg.SetCatalog(slices.Sorted(maps.Keys(insts)))
	for svc, in := range insts {
		reg.Update(svc, in)
	}
	return set, reg.Status(), nil
}

// emptyRules is the rule set of a check or explain given no rules file.
func emptyRules() *rules.Set {
	s, err := rules.Compile([]rules.Source{{Name: "(none)", Data: []byte("routes: []\n")}})
	if err != nil {
		panic(err) // a constant that compiles
	}
	return s
}

// checkConsul prints one line per invalid declaration registered in
// Consul ("consul: SERVICE/NAME (instances ...): error") and a summary
// line, and returns how many are invalid. It checks every registered
// instance, passing or not: a declaration is worth fixing before the
// instance is up.
func checkConsul(addr string, stdout, stderr io.Writer) (int, error) {
	_, status, err := registered(addr, emptyRules(), nil, false)
	if err != nil {
		return 0, err
	}
	invalid := 0
	for _, s := range status {
		if s.State == subscriptions.StateInvalid {
			invalid++
			fmt.Fprintf(stdout, "consul: %s (instances %s): %s\n", s.Route, strings.Join(s.Instances, ", "), s.Error)
		}
	}
	fmt.Fprintf(stderr, "consul %s: %d subscription(s) declared, %d invalid\n", addr, len(status), invalid)
	return invalid, nil
}
