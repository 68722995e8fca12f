// Command demoservice is a small backend HTTP service for demos and load
// tests of the gateway: it registers itself in Consul with an HTTP health
// check, logs one line per received message (never the body), answers with
// a JSON acknowledgement after a modelled latency, and deregisters on
// SIGINT or SIGTERM. With -shop it also serves the order saga's steps
// (shop.go).
//
//	demoservice -name orders -consul 127.0.0.1:8500 -latency lognormal:2ms:8ms
//	demoservice -name payments -shop -decline-above 1800
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/msgroute/gateway/internal/backend"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "demoservice:", err)
		os.Exit(1)
	}
}

type options struct {
	name, id, listen, consul, tags, latency, logLevel string
	weight, errorRate, declineAbove                   float64
	quiet, shop                                       bool
	stock                                             int
	subscriptions                                     subscribeFlags
	deregisterAfter                                   time.Duration
}

func parseFlags(args []string, out io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("demoservice", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.name, "name", "", "service name registered in Consul (required)")
	fs.StringVar(&o.id, "id", "", "instance ID (default NAME-PORT)")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:0", "listen address; port 0 picks a free port")
	fs.StringVar(&o.consul, "consul", "127.0.0.1:8500", "Consul agent HTTP address; empty: do not register")
	fs.StringVar(&o.tags, "tags", "", "comma-separated Consul tags")
	fs.Float64Var(&o.weight, "weight", 0, "service meta weight (positive; 0 leaves it unset, i.e. 1)")
	o.subscriptions = subscribeFlags{}
	fs.Var(o.subscriptions, "subscribe", `declare a gateway subscription in service meta: NAME=JSON, e.g. 'trail={"stream":"orders","match":"true"}' (repeatable)`)
	fs.StringVar(&o.latency, "latency", "0", `service time: "0", a duration ("2ms") or "lognormal:MEDIAN:P99"`)
	fs.Float64Var(&o.errorRate, "error-rate", 0, "fraction of messages answered 503, 0..1")
	fs.BoolVar(&o.quiet, "quiet", false, "do not log each message")
	fs.BoolVar(&o.shop, "shop", false, "serve the order saga: POST /inventory/reserve, /inventory/release, /payments/charge, /orders/cancel; GET /inventory, /saga")
	fs.IntVar(&o.stock, "stock", 1000000, "with -shop: initial stock of every SKU")
	fs.Float64Var(&o.declineAbove, "decline-above", 0, "with -shop: /payments/charge answers 402 for orders whose total is above this (0 = never)")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.DurationVar(&o.deregisterAfter, "deregister-after", time.Minute, "Consul removes the instance after its check is critical this long")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.name == "" {
		return o, errors.New("-name is required")
	}
	if o.stock < 0 || o.declineAbove < 0 {
		return o, errors.New("-stock and -decline-above must not be negative")
	}
	if o.weight < 0 {
		return o, fmt.Errorf("-weight %v: must not be negative", o.weight)
	}
	return o, nil
}

// run serves until ctx is done, then deregisters and shuts down. It
// returns nil on a clean, signalled shutdown.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})).With(slog.String("service", o.name))
	lat, err := backend.ParseLatency(o.latency)
	if err != nil {
		return fmt.Errorf("-latency: %w", err)
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	addr := ln.Addr().String()
	if o.id == "" {
		_, port, _ := net.SplitHostPort(addr)
		o.id = o.name + "-" + port
	}
	cfg := backend.Config{Name: o.name, ID: o.id, Latency: lat, ErrorRate: o.errorRate}
	if !o.quiet {
		cfg.Logger = log
	}
	if o.shop {
		s := newShop(o.stock, o.declineAbove)
		cfg.Query, cfg.Respond = s.query, s.respond
	}
	b, err := backend.New(cfg)
	if err != nil {
		ln.Close()
		return err
	}

	serveCtx, stopServe := context.WithCancel(context.Background())
	defer stopServe()
	served := make(chan error, 1)
	go func() { served <- b.Run(serveCtx, ln) }()
	log.Info("listening", slog.String("instance", o.id), slog.String("addr", addr), slog.String("latency", lat.String()))

	var client *api.Client
	if o.consul != "" {
		client, err = api.NewClient(&api.Config{Address: o.consul})
		if err == nil {
			err = backend.Register(ctx, client, backend.Registration{
				Service: o.name, ID: o.id, Addr: addr, Tags: splitTags(o.tags),
				Weight: o.weight, DeregisterAfter: o.deregisterAfter, Subscriptions: o.subscriptions,
			})
		}
		if err != nil {
			stopServe()
			return errors.Join(err, <-served)
		}
		log.Info("registered", slog.String("instance", o.id), slog.String("consul", o.consul))
	}

	select {
	case <-ctx.Done():
	case err := <-served:
		return errors.Join(err, deregister(client, o.id))
	}
	log.Info("shutting down", slog.String("instance", o.id))
	// Deregister first so the gateway stops picking this instance, then
	// let in-flight requests finish.
	derr := deregister(client, o.id)
	stopServe()
	serr := <-served
	st := b.Stats()
	log.Info("stopped", slog.String("instance", o.id), slog.Int64("received", st.Received),
		slog.Int64("errors", st.Errors), slog.Int64("max_inflight", st.MaxInFlight))
	return errors.Join(derr, serr)
}

func deregister(client *api.Client, id string) error {
	if client == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return backend.Deregister(ctx, client, id)
}

// subscribeFlags collects repeated -subscribe NAME=JSON, checking what
// Consul and the gateway would refuse anyway so the mistake shows here.
type subscribeFlags map[string]string

func (f subscribeFlags) String() string { return "" }

func (f subscribeFlags) Set(s string) error {
	name, decl, ok := strings.Cut(s, "=")
	switch {
	case !ok || name == "":
		return fmt.Errorf("%q: want NAME=JSON", s)
	case strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789-") != "":
		return fmt.Errorf("name %q: use lower-case letters, digits and '-'", name)
	case len(decl) > 512:
		return fmt.Errorf("%s: the declaration is %d bytes; Consul allows 512 in a meta value", name, len(decl))
	case !json.Valid([]byte(decl)):
		return fmt.Errorf("%s: the declaration is not valid JSON", name)
	}
	f[name] = decl
	return nil
}

func splitTags(s string) []string {
	var tags []string
	for _, t := range strings.Split(s, ",") {
		if t = strings.TrimSpace(t); t != "" {
			tags = append(tags, t)
		}
	}
	return tags
}
