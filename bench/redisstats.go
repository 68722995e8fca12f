package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisSample is the stream's length and Redis's memory at one moment of
// a run (the retention scenario).
type redisSample struct {
	AtSec         float64 `json:"at_sec"`
	XLen          int64   `json:"xlen"`
	UsedMemoryMiB float64 `json:"used_memory_mib"`
}

// redisSampler records a redisSample every interval until stopped.
type redisSampler struct {
	rdb      *redis.Client
	stream   string
	every    time.Duration
	start    time.Time
	samples  []redisSample
	baseline float64 // used_memory before the run, MiB
	stop     chan struct{}
	done     chan struct{}
}

func startRedisSampler(ctx context.Context, rdb *redis.Client, stream string, every time.Duration) *redisSampler {
	s := &redisSampler{rdb: rdb, stream: stream, every: every, start: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	s.baseline, _ = usedMemoryMiB(ctx, rdb)
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.stop:
				return
			case <-t.C:
				s.sample(ctx)
			}
		}
	}()
	return s
}

func (s *redisSampler) sample(ctx context.Context) {
	n, err := s.rdb.XLen(ctx, s.stream).Result()
	if err != nil {
		return
	}
	mem, err := usedMemoryMiB(ctx, s.rdb)
	if err != nil {
		return
	}
	s.samples = append(s.samples, redisSample{AtSec: time.Since(s.start).Seconds(), XLen: n, UsedMemoryMiB: mem})
}

// finish takes a last sample and stops sampling.
func (s *redisSampler) finish(ctx context.Context) []redisSample {
	close(s.stop)
	<-s.done
	s.sample(ctx)
	return s.samples
}

func usedMemoryMiB(ctx context.Context, rdb *redis.Client) (float64, error) {
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			b, err := strconv.ParseFloat(v, 64)
			return b / (1 << 20), err
		}
	}
	return 0, fmt.Errorf("INFO memory: no used_memory")
}

// printRedisSamples writes a run's samples as a table (one row per 30 s)
// and the largest and mean XLEN and used_memory over all samples.
func printRedisSamples(w io.Writer, name string, baseline float64, samples []redisSample) {
	fmt.Fprintf(w, "  %s: used_memory before the run %.1f MiB\n", name, baseline)
	fmt.Fprintf(w, "  %8s %10s %16s\n", "t (s)", "XLEN", "used_memory MiB")
	next := 30.0
	var maxLen int64
	var maxMem, sumLen, sumMem float64
	for i, s := range samples {
		if s.AtSec >= next || i == len(samples)-1 {
			fmt.Fprintf(w, "  %8.0f %10d %16.1f\n", s.AtSec, s.XLen, s.UsedMemoryMiB)
			next += 30
		}
		maxLen, maxMem = max(maxLen, s.XLen), max(maxMem, s.UsedMemoryMiB)
		sumLen, sumMem = sumLen+float64(s.XLen), sumMem+s.UsedMemoryMiB
	}
	if n := float64(len(samples)); n > 0 {
		fmt.Fprintf(w, "  %d samples: XLEN max %d mean %.0f; used_memory max %.1f MiB mean %.1f MiB\n",
			len(samples), maxLen, sumLen/n, maxMem, sumMem/n)
	}
}
