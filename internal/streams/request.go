package streams

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrReplyTimeout means fewer replies than wanted arrived within the
// request's timeout.
var ErrReplyTimeout = errors.New("timed out waiting for the reply")

// ReplyStreamPrefix starts the name of every reply stream Request creates.
// It is reserved: Group.Add writes to such a stream only while it exists.
const ReplyStreamPrefix = "gateway:reply:"

// replyGrace is how long a reply stream may outlive the request's timeout
// when the requester dies before deleting it.
const replyGrace = time.Minute

// RequestConfig describes one request-reply exchange.
type RequestConfig struct {
	Stream string            // stream to publish on; required
	Fields map[string]string // the message's fields (payload, attributes); not modified
	// Timeout bounds the wait for the replies; default 30s.
	Timeout time.Duration
	// Replies is how many replies to wait for (one per route the message
	// takes); default 1.
	Replies int
}

// RequestResult is what a request saw.
type RequestResult struct {
	ID            string              // the published entry's ID
	ReplyTo       string              // the reply stream used (deleted when Request returns)
	CorrelationID string              // the message's correlation_id
	Replies       []map[string]string // in arrival order
}

// Publish XADDs fields to stream and returns the entry ID.
func Publish(ctx context.Context, rdb redis.UniversalClient, stream string, fields map[string]string) (string, error) {
	if stream == "" {
		return "", errors.New("publish: no stream")
	}
	values := make([]string, 0, 2*len(fields))
	for k, v := range fields {
		values = append(values, k, v)
	}
	if len(values) == 0 {
		values = append(values, "payload", "") // XADD needs a field
	}
	id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: values}).Result()
	if err != nil {
		return "", fmt.Errorf("xadd %s: %w", stream, err)
	}
	return id, nil
}

// Request publishes a message with a fresh reply_to stream (and a fresh
// correlation_id unless Fields has one) and waits for cfg.Replies replies.
// The reply stream is created empty before the message is published and
// deleted when Request returns, whatever the outcome; replies that come
// later are dropped by the gateway (Group.Add never creates a reply stream),
// so no key is left behind. Its TTL of Timeout+1m is the safety net for a
// requester killed before it could delete it.
func Request(ctx context.Context, rdb redis.UniversalClient, cfg RequestConfig) (RequestResult, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Replies <= 0 {
		cfg.Replies = 1
	}
	if _, ok := cfg.Fields["reply_to"]; ok {
		return RequestResult{}, errors.New("request: reply_to is chosen by the request itself; do not set it")
	}
	res := RequestResult{ReplyTo: ReplyStreamPrefix + randomHex(), CorrelationID: cfg.Fields["correlation_id"]}
	if res.CorrelationID == "" {
		res.CorrelationID = randomHex()
	}
	// An empty stream with a TTL: XADD creates the key, XTRIM empties it,
	// in one transaction.
	_, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XAdd(ctx, &redis.XAddArgs{Stream: res.ReplyTo, Values: []string{"init", ""}})
		p.XTrimMaxLen(ctx, res.ReplyTo, 0)
		p.Expire(ctx, res.ReplyTo, cfg.Timeout+replyGrace)
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("create reply stream %s: %w", res.ReplyTo, err)
	}
	fields := make(map[string]string, len(cfg.Fields)+2)
	for k, v := range cfg.Fields {
		fields[k] = v
	}
	fields["reply_to"], fields["correlation_id"] = res.ReplyTo, res.CorrelationID
	if res.ID, err = Publish(ctx, rdb, cfg.Stream, fields); err != nil {
		deleteQuietly(rdb, res.ReplyTo)
		return res, err
	}
	err = res.await(ctx, rdb, cfg)
	deleteQuietly(rdb, res.ReplyTo)
	return res, err
}

// await reads the reply stream until enough replies arrived, the timeout
// passed or ctx ended.
func (res *RequestResult) await(ctx context.Context, rdb redis.UniversalClient, cfg RequestConfig) error {
	deadline := time.Now().Add(cfg.Timeout)
	last := "0"
	for len(res.Replies) < cfg.Replies {
		wait := time.Until(deadline)
		if wait <= 0 {
			return fmt.Errorf("%w: %d of %d replies within %s on %s", ErrReplyTimeout, len(res.Replies), cfg.Replies, cfg.Timeout, res.ReplyTo)
		}
		got, err := rdb.XRead(ctx, &redis.XReadArgs{
			Streams: []string{res.ReplyTo, last}, Count: 16, Block: max(min(wait, 5*time.Second), time.Millisecond),
		}).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return fmt.Errorf("xread %s: %w", res.ReplyTo, err)
		}
		for _, s := range got {
			for _, m := range s.Messages {
				last = m.ID
				e := toEntry(res.ReplyTo, m, 0)
				if e.Fields["correlation_id"] == res.CorrelationID {
					res.Replies = append(res.Replies, e.Fields)
				}
			}
		}
	}
	return nil
}

// deleteQuietly removes a reply stream; if that fails, its TTL still does.
func deleteQuietly(rdb redis.UniversalClient, key string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = rdb.Del(ctx, key).Err()
}

func randomHex() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
