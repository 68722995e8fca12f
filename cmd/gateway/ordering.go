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
// of the router's claim idle (consumer.claim_idle or its default), so a dead
// owner's streams are taken over (TTL plus one renew interval) within
// claim_idle, as the CONTRACT promises.
func newLeases(rdb redis.UniversalClient, c config.Consumer, claimIdle time.Duration, log *slog.Logger) (*lease.Manager, error) {
	return lease.New(rdb, lease.Config{Group: c.Group, Owner: c.Name, TTL: claimIdle / 2, Logger: log})
}

// leaseOwner adapts the lease manager to the router's Owner. The router is
// built first (the lease TTL derives from its claim idle), so m is set
// after New and before Run.
type leaseOwner struct{ m *lease.Manager }

// Own waits for the lease of stream.
func (o *leaseOwner) Own(ctx context.Context, stream string) (router.Ownership, error) {
	g, err := o.m.Acquire(ctx, stream)
	if err != nil {
		return router.Ownership{}, err
	}
	// Half the margin: a read started while the lease is valid ends before
	// Redis can give the stream to another replica.
	return router.Ownership{Lease: g, ReadBlock: o.m.Margin() / 2}, nil
}

// ownerLookupTimeout bounds the lease read of one stream for GET /streams.
const ownerLookupTimeout = 2 * time.Second

// streamOrdering answers, for GET /streams, whether a stream is ordered
// (a route with order_key of the active rules reads it) and which consumer
// owns it ("" when none does).
type streamOrdering struct {
	rules  func() *rules.Set
	leases *lease.Manager
	log    *slog.Logger
}

// Ordering reports stream's ordered flag and current owner. The owner is
// read from the lease even for a stream that is no longer ordered, so a
// handover in progress shows.
func (s streamOrdering) Ordering(ctx context.Context, stream string) (ordered bool, owner string, err error) {
	ordered = len(s.rules().OrderedStreams([]string{stream})) > 0
	ctx, cancel := context.WithTimeout(ctx, ownerLookupTimeout)
	defer cancel()
	owner, err = s.leases.Owner(ctx, stream)
	return ordered, owner, err
}

// Ownership is Ordering as retention.Config's Ownership hook: an owner
// Redis cannot tell is reported as none, with a warning.
func (s streamOrdering) Ownership(stream string) (ordered bool, owner string) {
	ordered, owner, err := s.Ordering(context.Background(), stream)
	if err != nil {
		s.log.Warn("reading stream owner failed", "stream", stream, "err", err)
	}
	return ordered, owner
}
