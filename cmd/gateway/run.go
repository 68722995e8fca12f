package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/msgroute/gateway/balancer"
	"github.com/msgroute/gateway/discovery"
	"github.com/msgroute/gateway/health"
	"github.com/msgroute/gateway/internal/config"
	"github.com/msgroute/gateway/internal/dispatch"
	"github.com/msgroute/gateway/internal/metrics"
	"github.com/msgroute/gateway/internal/retention"
	"github.com/msgroute/gateway/internal/rulewatch"
	"github.com/msgroute/gateway/internal/streams"
	"github.com/msgroute/gateway/router"
	"github.com/msgroute/gateway/rules"
	"github.com/msgroute/gateway/subscriptions"
)

func cmdRun(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "configs/gateway.yaml", "config file")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	cfg, err := config.Load(*file)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log, stderr)
	streams.RouteRedisLogs(log)
	discovery.RouteAPILogs(log)
	set, err := rules.Load(cfg.Rules.Path)
	if err != nil {
		return fmt.Errorf("rules %s: %w", cfg.Rules.Path, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve(ctx, cfg, set, log)
}

// serve wires the parts and runs them until ctx is done. Shutdown order:
// the router stops reading and drains (acks included), then discovery,
// the rules watcher and the admin server stop, then Redis is closed.
func serve(ctx context.Context, cfg *config.Config, set *rules.Set, log *slog.Logger) error {
	m := metrics.New()
	holder := router.NewRuleHolder(set)
	for _, result := range []string{"success", "failure"} {
		m.RulesReloads.WithLabelValues(result) // exported at 0 from the start
	}

	rdb, err := redisClient(cfg.Redis)
	if err != nil {
		return err
	}
	defer rdb.Close()
	group := streams.NewGroup(rdb, cfg.Consumer.Group, cfg.Consumer.Name)

	bal, err := balancer.New(balancer.Config{Algorithm: balancer.Algorithm(cfg.Balancer.Algorithm)})
	if err != nil {
		return err
	}
	consulAddr := cfg.Consul.Address
	if cfg.Consul.Scheme == "https" && !strings.Contains(consulAddr, "://") {
		consulAddr = "https://" + consulAddr
	}
	dcfg := discovery.Config{
		Address: consulAddr, Token: cfg.Consul.Token, Datacenter: cfg.Consul.Datacenter,
		CAFile: cfg.Consul.TLSCAFile, CertFile: cfg.Consul.TLSCert, KeyFile: cfg.Consul.TLSKey,
		InsecureSkipVerify: cfg.Consul.TLSInsecureSkipVerify, Logger: log,
	}
	var subs *subscriptions.Registry // set below when subscriptions are on
	onUpdate := bal.Update
	if cfg.Consul.Subscriptions {
		// The balancer first: a subscription appearing finds its instances.
		onUpdate = func(svc string, insts []discovery.Instance) { bal.Update(svc, insts); subs.Update(svc, insts) }
	}
	disc, err := discovery.New(dcfg, onUpdate)
	if err != nil {
		return err
	}
	var rt *router.Router // set below; nothing publishes again before it runs
	publish := func(s *rules.Set) {
		if rt != nil {
			rt.PrimeMetrics(s)
		}
		holder.Store(s)
		m.RulesActive.Set(float64(len(s.Routes()) + len(s.Subscriptions())))
	}
	setRules := func(s *rules.Set) {
		publish(s)
		disc.SetServices(s.Services())
	}
	var catalog *discovery.Catalog
	if cfg.Consul.Subscriptions {
		subs = subscriptions.New(subscriptions.Config{Streams: subscriptionStreams(cfg), Logger: log}, set,
			subscriptions.Deps{Publish: publish, Watch: disc.SetServices, Count: func(active, invalid int) {
				m.Subscriptions.WithLabelValues(subscriptions.StateActive).Set(float64(active))
				m.Subscriptions.WithLabelValues(subscriptions.StateInvalid).Set(float64(invalid))
			}})
		if catalog, err = discovery.NewCatalog(dcfg, subs.SetCatalog); err != nil {
			return err
		}
		setRules = subs.SetRules
	}
	setRules(set)

	watcher, err := rulewatch.New(rulewatch.Config{Path: cfg.Rules.Path, Version: set.Version(), Logger: log},
		func(s *rules.Set) {
			setRules(s)
			m.RulesReloads.WithLabelValues("success").Inc()
			log.Info("rules reloaded", "version", s.Version(), "routes", len(s.Routes()))
		},
		func(err error) {
			holder.Fail(err)
			m.RulesReloads.WithLabelValues("failure").Inc()
			log.Warn("rules reload rejected; previous rule set stays active", "err", err)
		})
	if err != nil {
		return err
	}

	disp, err := dispatch.New(dispatch.Config{
		Timeout: cfg.Dispatch.Timeout, MaxConnsPerHost: cfg.Dispatch.MaxConnsPerHost,
	})
	if err != nil {
		return err
	}
	tracer, flushTraces, err := newTracer(cfg.Tracing, log)
	if err != nil {
		return err
	}
	defer flushTraces() // after the router drained: its last spans go too
	owner := &leaseOwner{}
	rt, err = router.New(router.Config{
		Streams: cfg.Consumer.Streams, Batch: cfg.Consumer.Batch, Block: cfg.Consumer.Block,
		ClaimIdle: cfg.Consumer.ClaimIdle, ClaimInterval: cfg.Consumer.ClaimInterval, AttemptTimeout: cfg.Dispatch.Timeout,
		MaxDeliveries: int64(cfg.Consumer.MaxDeliveries), MaxInflight: cfg.Consumer.MaxInflight,
		ServiceConcurrency: cfg.Consumer.ServiceConcurrency, InstanceConcurrency: cfg.Dispatch.MaxConnsPerHost, ServiceLimits: cfg.Consumer.ServiceLimits, DLQStream: cfg.Consumer.DLQStream,
		MaxPayloadBytes: cfg.Consumer.MaxPayloadBytes, ReplyMaxLen: cfg.Consumer.ReplyMaxLen, Logger: log,
	}, router.Deps{
		Source: group, Settler: group, Publisher: group, Picker: bal, Sender: disp, Instances: bal.Instances,
		Rules: holder.Load, Metrics: m, Owner: owner, TakeOver: group, Batcher: disp, Tracer: tracer,
	})
	if err != nil {
		return err
	}
	rt.PrimeMetrics(set)
	leases, err := newLeases(rdb, cfg.Consumer, rt.ClaimIdle(), log)
	if err != nil {
		return err
	}
	owner.m = leases
	ret, err := retention.New(retention.Config{
		Streams: cfg.Consumer.Streams, Group: cfg.Consumer.Group, Mode: retention.Mode(cfg.Consumer.Retention),
		Keep: cfg.Consumer.RetentionKeep, TrimInterval: cfg.Consumer.RetentionInterval,
		DLQStream: cfg.Consumer.DLQStream, DLQMaxLen: cfg.Consumer.DLQMaxLen, Logger: log,
		Ownership: streamOrdering{rules: holder.Load, leases: leases, log: log}.Ownership,
	}, rdb, m)
	if err != nil {
		return err
	}
	src := adminSources(m, rdb.Ping, holder, bal, disc, ret, catalog, subs)
	src.DeadLetters = func(ctx context.Context, limit int) (any, error) {
		return streams.RecentDeadLetters(ctx, rdb, cfg.Consumer.DLQStream, limit)
	}
	admin, err := health.New(health.Config{Listen: cfg.Admin.Listen, Token: cfg.Admin.Token, Logger: log}, src)
	if err != nil {
		return err
	}
	m.Registry.MustRegister(newInstancesCollector(bal, disc), newEvalErrorsCollector(holder))

	log.Info("gateway starting", "streams", cfg.Consumer.Streams, "group", cfg.Consumer.Group,
		"consumer", cfg.Consumer.Name, "admin", admin.Addr(), "rules_version", set.Version())

	// Everything but the router stops only after the router has drained.
	auxCtx, stopAux := context.WithCancel(context.Background())
	defer stopAux()
	aux, auxCtx := errgroup.WithContext(auxCtx)
	aux.Go(func() error { return disc.Run(auxCtx) })
	if catalog != nil {
		aux.Go(func() error { return catalog.Run(auxCtx) })
	}
	aux.Go(func() error { return watcher.Run(auxCtx) })
	aux.Go(func() error { return admin.Run(auxCtx) })
	aux.Go(func() error { return ret.Run(auxCtx) }) // lag and pending gauges, /streams, trimming
	aux.Go(func() error { return leases.Run(auxCtx) })
	aux.Go(func() error { return reloadOnSIGHUP(auxCtx, watcher, log) })

	routerCtx, stopRouter := context.WithCancel(ctx)
	defer stopRouter()
	go func() {
		<-auxCtx.Done() // a part failed: stop the router too
		stopRouter()
	}()
	rerr := rt.Run(routerCtx)
	log.Info("router drained; stopping")
	stopAux()
	aerr := aux.Wait()
	if errors.Is(aerr, context.Canceled) {
		aerr = nil
	}
	return errors.Join(rerr, aerr)
}

// subscriptionStreams is the allow-list of streams declarations may read:
// consul.subscription_streams, by default every consumed stream.
func subscriptionStreams(cfg *config.Config) []string {
	if len(cfg.Consul.SubscriptionStreams) > 0 {
		return cfg.Consul.SubscriptionStreams
	}
	return cfg.Consumer.Streams
}

// oneShot is what a one-shot command (publish, request, dlq replay) works
// with: the config, its Redis, and a context that ends on SIGINT or SIGTERM.
type oneShot struct {
	ctx  context.Context
	cfg  *config.Config
	rdb  redis.UniversalClient
	stop context.CancelFunc
}

// openOneShot loads the config in file and opens its Redis, with go-redis's
// own log lines routed through the config's logger.
func openOneShot(file string, stderr io.Writer) (*oneShot, error) {
	cfg, err := config.Load(file)
	if err != nil {
		return nil, err
	}
	streams.RouteRedisLogs(newLogger(cfg.Log, stderr))
	rdb, err := redisClient(cfg.Redis)
	if err != nil {
		return nil, err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	return &oneShot{ctx: ctx, cfg: cfg, rdb: rdb, stop: stop}, nil
}

// close stops listening for signals and closes Redis.
func (o *oneShot) close() {
	o.stop()
	o.rdb.Close()
}

// redisClient builds the Redis client the config describes.
func redisClient(c config.Redis) (redis.UniversalClient, error) {
	return streams.NewClient(streams.ClientConfig{
		Addrs: c.Addrs, Cluster: c.Cluster, Username: c.Username, Password: c.Password, DB: c.DB,
		TLS: c.TLS, CAFile: c.TLSCAFile, CertFile: c.TLSCertFile, KeyFile: c.TLSKeyFile,
		ServerName: c.TLSServerName, InsecureSkipVerify: c.TLSInsecureSkipVerify,
	})
}

func reloadOnSIGHUP(ctx context.Context, w *rulewatch.Watcher, log *slog.Logger) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			log.Info("SIGHUP: reloading rules")
			_ = w.Reload() // outcome reported through the watcher's callbacks
		}
	}
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
