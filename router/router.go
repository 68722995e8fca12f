package router

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/msgroute/gateway/balancer"
	"github.com/msgroute/gateway/internal/backoff"
	"github.com/msgroute/gateway/internal/metrics"
	"github.com/msgroute/gateway/rules"
)

// Config tunes the pipeline. Zero fields take the documented defaults;
// this is the one place those defaults live (the config file passes zero
// for every key the user left unset). Defaults that depend on each other
// are derived, never refused.
type Config struct {
	Streams []string      // required
	Batch   int           // entries per read; default 256
	Block   time.Duration // XREADGROUP block; default 1s
	// ClaimIdle is XAUTOCLAIM's min idle: entries idle this long are taken
	// over. Default 30s, or 3 x AttemptTimeout when that is set above 10s.
	ClaimIdle     time.Duration
	ClaimInterval time.Duration // XAUTOCLAIM period; default min(ClaimIdle/4, 1s)
	// AttemptTimeout bounds one HTTP attempt of a route without a timeout
	// of its own (config dispatch.timeout). Default min(5s, ClaimIdle/3).
	// It must stay under ClaimIdle/2, so an entry in flight never looks
	// idle to XAUTOCLAIM between two lease renewals.
	AttemptTimeout time.Duration
	MaxDeliveries  int64 // deliveries before the DLQ; default 5
	MaxInflight    int   // messages in flight; default 1024
	// ServiceConcurrency caps requests in flight per service. Default 0:
	// derived, InstanceConcurrency per instance the service has (Deps.
	// Instances), so the cap follows the pool.
	ServiceConcurrency int
	// InstanceConcurrency is the derived cap's share per instance;
	// default 32 (dispatch's connections per instance).
	InstanceConcurrency int
	// ServiceLimits overrides the cap for named services.
	ServiceLimits   map[string]int
	DLQStream       string        // dead-letter stream; required (config consumer.dlq_stream)
	MaxPayloadBytes int           // default 1 MiB
	ReplyMaxLen     int64         // approximate MAXLEN of reply streams; default 10000
	DrainTimeout    time.Duration // how long shutdown waits for in-flight messages; default 30s
	Logger          *slog.Logger  // default slog.Default()
}

// Defaults of Config (see its fields).
const (
	defaultClaimIdle      = 30 * time.Second
	defaultAttemptTimeout = 5 * time.Second
	maxClaimInterval      = time.Second
)

func (c *Config) fill() error {
	if len(c.Streams) == 0 {
		return errors.New("router: no streams")
	}
	if c.DLQStream == "" {
		return errors.New("router: no dead-letter stream")
	}
	if c.Batch < 0 || c.MaxInflight < 0 || c.ServiceConcurrency < 0 || c.InstanceConcurrency < 0 || c.MaxDeliveries < 0 || c.ClaimIdle < 0 ||
		c.ClaimInterval < 0 || c.AttemptTimeout < 0 || c.Block < 0 || c.MaxPayloadBytes < 0 || c.ReplyMaxLen < 0 {
		return fmt.Errorf("router: negative setting in %+v", c)
	}
	c.Batch = cmp.Or(c.Batch, 256)
	c.MaxInflight = cmp.Or(c.MaxInflight, 1024)
	c.InstanceConcurrency = cmp.Or(c.InstanceConcurrency, 32)
	c.MaxPayloadBytes = cmp.Or(c.MaxPayloadBytes, 1<<20)
	c.Block = cmp.Or(c.Block, time.Second)
	if c.ClaimIdle == 0 {
		c.ClaimIdle = max(defaultClaimIdle, 3*c.AttemptTimeout)
	}
	c.AttemptTimeout = cmp.Or(c.AttemptTimeout, min(defaultAttemptTimeout, c.ClaimIdle/3))
	c.ClaimInterval = cmp.Or(c.ClaimInterval, min(c.ClaimIdle/4, maxClaimInterval))
	c.MaxDeliveries = cmp.Or(c.MaxDeliveries, 5)
	c.ReplyMaxLen = cmp.Or(c.ReplyMaxLen, 10000)
	c.DrainTimeout = cmp.Or(c.DrainTimeout, 30*time.Second)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.AttemptTimeout >= c.ClaimIdle/2 {
		return fmt.Errorf("router: attempt timeout %s must be less than half of claim idle %s", c.AttemptTimeout, c.ClaimIdle)
	}
	return nil
}

// Source reads a consumer group's entries.
type Source interface {
	EnsureGroup(ctx context.Context, stream string) error
	Read(ctx context.Context, stream, id string, count int, block time.Duration) ([]Entry, error)
	Claim(ctx context.Context, stream, start string, minIdle time.Duration, count int) ([]Entry, string, error)
}

// Settler acknowledges entries and manages their pending state.
type Settler interface {
	AckMany(ctx context.Context, byStream map[string][]string) error
	Park(ctx context.Context, stream, id string, deliveries int64, retryAfter, claimIdle time.Duration) error
	Renew(ctx context.Context, stream string, ids []string) error
	// SettledRoutes and RememberSettled keep, across deliveries of one
	// entry, the routes that already have a final outcome (fan-out).
	SettledRoutes(ctx context.Context, stream, id string) ([]string, error)
	RememberSettled(ctx context.Context, stream, id string, routes []string, ttl time.Duration) error
}

// Publisher appends entries (dead letters, replies).
type Publisher interface {
	Add(ctx context.Context, stream string, maxLen int64, fields []string) (string, error)
}

// Picker chooses instances and learns from outcomes.
type Picker interface {
	// PickAt picks at now, the start of the attempt (one clock read serves
	// both the balancer and the attempt's timing).
	PickAt(service string, tags []string, avoid *balancer.Endpoint, now time.Time) (*balancer.Endpoint, error)
	// DoneAt reports an attempt's outcome and how long it took, at now,
	// its end (the clock read that timed it serves the balancer too).
	DoneAt(e *balancer.Endpoint, o balancer.Outcome, elapsed time.Duration, now time.Time)
	AllowRetry(service string) bool
}

// Sender performs one HTTP attempt.
type Sender interface {
	Do(r *Request) (Result, error)
}

// Deps are the router's collaborators; all are required.
type Deps struct {
	Source    Source
	Settler   Settler
	Publisher Publisher
	Picker    Picker
	Sender    Sender
	// Rules returns the active rule set; it is loaded once per message, so
	// a message finishes under the set it started with.
	Rules   func() *rules.Set
	Metrics *metrics.Metrics
	// Owner gives this replica its ordered streams. Optional: nil means
	// this router is the only reader.
	Owner Owner
	// TakeOver moves the previous owner's pending entries of an ordered
	// stream to this consumer. Optional: nil moves none (one replica).
	TakeOver PendingMover
	// Instances reports how many instances a service has now, for caps
	// derived from it (Config.ServiceConcurrency). Optional: nil counts
	// one instance per service.
	Instances func(service string) int
	// Batcher sends the requests of routes with a batch. Optional: nil
	// delivers their messages one request each.
	Batcher BatchSender
	// Tracer records a span per message and one per dispatch attempt
	// (README "Tracing"). Optional: nil is tracing off, at the cost of a
	// nil check per message and attempt.
	Tracer trace.Tracer
}

// Router runs the pipeline. Create with New, run with Run once.
type Router struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	slots   *slots // global in-flight places
	svc     *serviceLimits
	acks    *acker
	live    *leases
	workers *workerPool
	mc      *metricCache
	stages  *stageClock
	batches *batcher       // nil without Deps.Batcher
	work    sync.WaitGroup // messages handed to workers and not yet settled
	running atomic.Bool
}

// New validates cfg and returns a Router.
func New(cfg Config, deps Deps) (*Router, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	if deps.Source == nil || deps.Settler == nil || deps.Publisher == nil || deps.Picker == nil ||
		deps.Sender == nil || deps.Rules == nil || deps.Metrics == nil {
		return nil, errors.New("router: missing dependency")
	}
	r := &Router{
		cfg: cfg, deps: deps, log: cfg.Logger,
		slots: newSlots(cfg.MaxInflight),
		svc:   newServiceLimits(cfg.ServiceConcurrency, cfg.InstanceConcurrency, cfg.ServiceLimits, deps.Instances),
		live:  newLeases(),
	}
	r.mc = newMetricCache(deps.Metrics)
	r.stages = newStageClock(deps.Metrics.Stage)
	for _, reason := range []string{reasonNoRoute, reasonPermanent, reasonMaxDeliveries, reasonBadMessage, reasonSchema} {
		deps.Metrics.DLQ.WithLabelValues(reason) // exported at 0 from the start
	}
	r.acks = newAcker(deps.Settler, r.mc, cfg.Logger)
	r.workers = newWorkerPool(r.finish)
	if deps.Batcher != nil {
		r.batches = newBatcher(r, deps.Batcher)
	}
	return r, nil
}

// Run consumes until ctx is done, then stops reading, lets in-flight
// messages finish (up to DrainTimeout), flushes the final acks and returns.
// It returns an error only if the pipeline could not start.
func (r *Router) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("router: Run called twice")
	}
	for _, s := range r.cfg.Streams {
		if err := r.ensureGroup(ctx, s); err != nil {
			if ctx.Err() != nil {
				return nil // stopped before Redis ever answered: nothing to drain
			}
			return err
		}
	}
	// Work goroutines and the acker outlive ctx: they use their own
	// context so in-flight messages finish during the drain.
	workCtx, cancelWork := context.WithCancel(context.Background())
	defer cancelWork()
	ackDone := make(chan struct{})
	go func() {
		defer close(ackDone)
		r.acks.run(workCtx)
	}()

	g, gctx := errgroup.WithContext(ctx)
	for _, s := range r.cfg.Streams {
		r.mc.owned(s).Set(0)
		g.Go(func() error { r.streamLoop(gctx, workCtx, s); return nil })
	}
	drained := make(chan struct{})
	renewDone := make(chan struct{})
	go func() {
		defer close(renewDone)
		r.renewLoop(workCtx, drained)
	}()
	_ = g.Wait()

	go func() {
		r.work.Wait()
		close(drained)
	}()
	select {
	case <-drained:
	case <-time.After(r.cfg.DrainTimeout):
		r.log.Warn("drain timeout; in-flight messages stay pending and will be redelivered")
		cancelWork()
		<-drained
	}
	r.workers.close() // the readers are gone: nothing hands jobs any more
	<-renewDone
	r.acks.close()
	<-ackDone
	return nil
}

func (r *Router) ensureGroup(ctx context.Context, stream string) error {
	b := &backoff.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}
	for {
		err := r.deps.Source.EnsureGroup(ctx, stream)
		if err == nil {
			return nil
		}
		r.deps.Metrics.Errors.WithLabelValues("xgroup_create").Inc()
		r.log.Warn("create consumer group failed; retrying", "stream", stream, "err", err)
		if !b.Wait(ctx) {
			return fmt.Errorf("create group on %s: %w", stream, err)
		}
	}
}
