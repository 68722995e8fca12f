package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/valyala/fasthttp"
)

// The floor is the thinnest pipeline doing the gateway's job: XREADGROUP a
// batch, POST each entry's payload round robin to fixed instance addresses,
// XACK what got a 2xx. No rules, no discovery, no balancing, no retries,
// no DLQ. It runs as its own process (`bench floor-worker`) so that its RSS
// and CPU are measured exactly like the gateway's.

type floorConfig struct {
	redisAddr string
	stream    string
	group     string
	consumer  string
	instances []string
	batch     int
	inflight  int
}

// floorMain is the entry point of `bench floor-worker ...`.
func floorMain(args []string) error {
	var c floorConfig
	var instances string
	fs := flag.NewFlagSet("floor-worker", flag.ContinueOnError)
	fs.StringVar(&c.redisAddr, "redis", "", "Redis address")
	fs.StringVar(&c.stream, "stream", "", "stream to consume")
	fs.StringVar(&c.group, "group", "floor", "consumer group")
	fs.StringVar(&c.consumer, "consumer", "floor-1", "consumer name")
	fs.StringVar(&instances, "instances", "", "comma-separated host:port list")
	fs.IntVar(&c.batch, "batch", 256, "XREADGROUP COUNT")
	fs.IntVar(&c.inflight, "inflight", 512, "concurrent POSTs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c.instances = strings.Split(instances, ",")
	if c.redisAddr == "" || c.stream == "" || instances == "" {
		return errors.New("-redis, -stream and -instances are required")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runFloor(ctx, c, func() { fmt.Println("floor ready") })
}

// runFloor consumes until ctx is done, then finishes in-flight POSTs and
// their acks. ready is called once the group exists.
func runFloor(ctx context.Context, c floorConfig, ready func()) error {
	rdb := redis.NewClient(&redis.Options{Addr: c.redisAddr, PoolSize: 4})
	defer rdb.Close()
	err := rdb.XGroupCreateMkStream(ctx, c.stream, c.group, "0").Err()
	if err != nil && !isBusyGroup(err) {
		return fmt.Errorf("create group: %w", err)
	}
	ready()

	clients := make([]*fasthttp.HostClient, len(c.instances))
	for i, addr := range c.instances {
		clients[i] = &fasthttp.HostClient{Addr: addr, MaxConns: c.inflight}
	}
	jobs := make(chan redis.XMessage, c.batch)
	acks := make(chan string, c.inflight+c.batch)
	var next atomic.Uint64

	var workers sync.WaitGroup
	for range c.inflight {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for m := range jobs {
				hc := clients[next.Add(1)%uint64(len(clients))]
				if floorPost(hc, c.stream, m) {
					acks <- m.ID
				}
			}
		}()
	}
	ackDone := make(chan error, 1)
	go func() { ackDone <- floorAcker(rdb, c.stream, c.group, acks, c.batch) }()

	readErr := floorRead(ctx, rdb, c, jobs)
	close(jobs)
	workers.Wait()
	close(acks)
	return errors.Join(readErr, <-ackDone)
}

func floorRead(ctx context.Context, rdb *redis.Client, c floorConfig, jobs chan<- redis.XMessage) error {
	args := &redis.XReadGroupArgs{
		Group: c.group, Consumer: c.consumer, Streams: []string{c.stream, ">"},
		Count: int64(c.batch), Block: 100 * time.Millisecond,
	}
	for ctx.Err() == nil {
		res, err := rdb.XReadGroup(ctx, args).Result()
		if errors.Is(err, redis.Nil) || ctx.Err() != nil {
			continue
		}
		if err != nil {
			return fmt.Errorf("xreadgroup: %w", err)
		}
		for _, s := range res {
			for _, m := range s.Messages {
				jobs <- m
			}
		}
	}
	return nil
}

// floorPost delivers one entry; true on 2xx.
func floorPost(hc *fasthttp.HostClient, stream string, m redis.XMessage) bool {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURI("http://" + hc.Addr + "/")
	req.Header.SetContentType("application/json")
	req.Header.Set("X-Message-Id", m.ID)
	req.Header.Set("X-Stream", stream)
	if p, ok := m.Values["payload"].(string); ok {
		req.SetBodyString(p)
	}
	if err := hc.DoTimeout(req, resp, 10*time.Second); err != nil {
		return false
	}
	return resp.StatusCode() >= 200 && resp.StatusCode() < 300
}

// floorAcker XACKs IDs in batches: whatever has arrived when it wakes, at
// most max per call. It drains acks to the end even after an error, so
// workers never block; the first error is returned.
func floorAcker(rdb *redis.Client, stream, group string, acks <-chan string, max int) error {
	var first error
	ids := make([]string, 0, max)
	for id := range acks {
		ids = append(ids[:0], id)
	drain:
		for len(ids) < max {
			select {
			case id, ok := <-acks:
				if !ok {
					break drain
				}
				ids = append(ids, id)
			default:
				break drain
			}
		}
		if err := rdb.XAck(context.Background(), stream, group, ids...).Err(); err != nil && first == nil {
			first = fmt.Errorf("xack: %w", err)
		}
	}
	return first
}

// isBusyGroup isolates the one driver string check: XGROUP CREATE on an
// existing group answers "BUSYGROUP ...".
func isBusyGroup(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "BUSYGROUP")
}
