package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/msgroute/gateway/internal/config"
	"github.com/msgroute/gateway/internal/lease"
	"github.com/msgroute/gateway/router"
	"github.com/msgroute/gateway/rules"
)

// newLeases builds the ownership leases of ordered streams. The TTL is half
// of consumer.claim_idle, so a dead owner's streams are taken over (TTL plus
// one renew interval) within claim_idle, as the CONTRACT promises.
func newLeases(rdb redis.UniversalClient, c config.Consumer, log *slog.Logger) (*lease.Manager, error) {
	return lease.New(rdb, lease.Config{Group: c.Group, Owner: c.Name, TTL: c.ClaimIdle / 2, Logger: log})
}

// ownFunc adapts the lease manager to the router's Deps.Own.
func ownFunc(m *lease.Manager) func(ctx context.Context, stream string) (router.Ownership, error) {
	return func(ctx context.Context, stream string) (router.Ownership, error) {
		g, err := m.Acquire(ctx, stream)
		if err != nil {
			return router.Ownership{}, err
		}
		return router.Ownership{
			Ctx: g.Context(), Ack: g.Ack, SetDeliveries: g.SetDeliveries, Release: g.Release,
			// Half the margin: a read started while the lease is valid ends
			// before Redis can give the stream to another replica.
			ReadBlock: m.Margin() / 2,
		}, nil
	}
}

// streamOrdering answers, for GET /streams, whether a stream is ordered
// (a route with order_key of the active rules reads it) and which consumer
// owns it ("" when none does).
type streamOrdering struct {
	rules  func() *rules.Set
	leases *lease.Manager
}

// Ordering reports stream's ordered flag and current owner. The owner is
// read from the lease even for a stream that is no longer ordered, so a
// handover in progress shows.
func (s streamOrdering) Ordering(ctx context.Context, stream string) (ordered bool, owner string, err error) {
	ordered = len(s.rules().OrderedStreams([]string{stream})) > 0
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	owner, err = s.leases.Owner(ctx, stream)
	return ordered, owner, err
}
