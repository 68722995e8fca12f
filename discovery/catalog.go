package discovery

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync/atomic"

	"github.com/hashicorp/consul/api"

	"github.com/msgroute/gateway/internal/backoff"
)

// catalogClient is the part of Consul's API the catalog watch uses;
// *api.Catalog implements it.
type catalogClient interface {
	Services(q *api.QueryOptions) (map[string][]string, *api.QueryMeta, error)
}

// DeclarationFilter is the Consul filter expression that narrows the
// catalog to services with at least one instance carrying service meta.
// Consul's filter language cannot match a key prefix (gateway-sub-), so
// services whose instances carry only other meta (weight, version) are
// listed too; their instances simply declare nothing.
const DeclarationFilter = "ServiceMeta is not empty"

// Catalog watches the list of service names in Consul's catalog with one
// blocking query (/v1/catalog/services, filtered by DeclarationFilter) and
// reports every change of the list. With it, a Watcher can follow the
// instances of every service that may declare subscriptions, not only of
// those the rules name. Safe for concurrent use.
type Catalog struct {
	cfg      Config
	client   catalogClient
	onChange func(services []string)
	answered atomic.Bool
}

// NewCatalog returns a Catalog for the Consul agent in cfg (the same
// Config as New). onChange receives the sorted service names after the
// first answer and after every answer whose list differs; calls are
// serialized. It must not block for long. No query is made before Run.
func NewCatalog(cfg Config, onChange func(services []string)) (*Catalog, error) {
	cfg, client, err := cfg.client()
	if err != nil {
		return nil, err
	}
	return newCatalog(cfg, client.Catalog(), onChange), nil
}

func newCatalog(cfg Config, client catalogClient, onChange func([]string)) *Catalog {
	if onChange == nil {
		onChange = func([]string) {}
	}
	return &Catalog{cfg: cfg, client: client, onChange: onChange}
}

// Answered reports whether Consul has answered the catalog query once and
// onChange has returned for that answer.
func (c *Catalog) Answered() bool { return c.answered.Load() }

// Run queries until ctx is done, then returns nil. While Consul is
// unreachable the last list stays in force (onChange is not called); the
// query is retried with the Watcher's backoff.
func (c *Catalog) Run(ctx context.Context) error {
	var (
		index    uint64
		failures int
		last     []string
		answered bool
	)
	for {
		if answered && !backoff.Sleep(ctx, c.cfg.MinInterval) {
			return nil
		}
		qctx, cancel := context.WithTimeout(ctx, c.cfg.WaitTime+c.cfg.WaitTime/16+requestSlack)
		q := (&api.QueryOptions{WaitIndex: index, WaitTime: c.cfg.WaitTime, AllowStale: true,
			Filter: DeclarationFilter}).WithContext(qctx)
		got, meta, err := c.client.Services(q)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if index > 1 {
				index = 1
			}
			failures++
			level := slog.LevelDebug
			if failures == 1 {
				level = slog.LevelWarn
			}
			c.cfg.Logger.Log(ctx, level, "consul catalog query failed", "failures", failures, "error", err)
			if !backoff.Sleep(ctx, backoff.Delay(failures, c.cfg.BackoffMin, c.cfg.BackoffMax)) {
				return nil
			}
			continue
		}
		if failures > 0 {
			c.cfg.Logger.Info("consul catalog watch recovered", "failures", failures)
			failures = 0
		}
		index = nextIndex(index, meta.LastIndex)
		names := slices.Sorted(maps.Keys(got))
		if !answered || !slices.Equal(names, last) {
			answered, last = true, names
			c.onChange(names)
		}
		// After onChange: whoever sees Answered sees its effects.
		c.answered.Store(true)
	}
}
