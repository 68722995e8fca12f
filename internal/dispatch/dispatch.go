// Package dispatch is the HTTP adapter: it turns one routed message into one
// HTTP/1.1 request to one chosen instance and reports the answer. It owns
// the connections to instances (a pool per instance that pipelines requests
// beyond its cap; see hostPool); fasthttp parses the answers. It never picks
// instances, and resends a request only when its connection was gone
// before the request reached the instance: the router picks and retries.
package dispatch

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/msgroute/gateway/rules"
)

// Config configures the HTTP client.
type Config struct {
	// Timeout is the per-attempt timeout when a request has none; default 5s.
	Timeout time.Duration
	// MaxConnsPerHost bounds connections per instance; default 32. Once
	// all of them are busy, further requests are pipelined on them (HTTP/1.1)
	// instead of dialing more: an instance serves at most this many
	// requests at once. Unbounded dialing fed a spiral under a burst: slower
	// answers, more requests in flight, more connections dialed (CPU on both
	// sides), slower answers; bench runs at half load showed p99 52 ms with
	// 512 and 15 ms with 32. Fewer connections with deeper pipelines cost
	// less CPU per message but add queueing delay (see hostPool).
	MaxConnsPerHost int
	// NoPipelining makes a request that finds every connection busy wait
	// for a free one (within its timeout) instead of being pipelined, for
	// instances that mishandle pipelined requests.
	NoPipelining bool
	// MaxResponseBytes bounds a response body kept for request-reply;
	// default 1 MiB. Larger answers fail the attempt.
	MaxResponseBytes int
}

// Request is one attempt to deliver a message over one route.
type Request struct {
	Addr    string // instance host:port
	Method  string
	Path    string // starts with "/"
	Route   string
	Msg     *rules.Message
	Attempt int // 1-based, X-Delivery-Attempt
	Timeout time.Duration
	// KeepBody asks for the response body (request-reply).
	KeepBody bool
}

// Result is an instance's answer.
type Result struct {
	Status      int
	Body        []byte // only with KeepBody
	ContentType string // only with KeepBody
	// Dropped counts attributes not forwarded because their name or value
	// is not a valid HTTP header.
	Dropped int
}

// ErrBadPath means the resolved path would not address the chosen
// instance (it failed to parse or named another host).
var ErrBadPath = errors.New("path does not address the instance")

// Dispatcher sends requests. Safe for concurrent use.
type Dispatcher struct {
	cfg Config
	// hosts maps an instance address to its *hostPool (its
	// connection pool). fasthttp.Client would find the pool from the
	// request's URI under a lock shared by every request; the router
	// already knows the address.
	hosts sync.Map
	// sweepMu serializes sweeps; lastSweep is when the last one ran.
	sweepMu   sync.Mutex
	lastSweep atomic.Int64
}

// sweepEvery is how often idle connections are closed and pools left
// without any forgotten, so a churning fleet does not grow the map for ever.
const sweepEvery = time.Minute

// New returns a Dispatcher with cfg's defaults filled.
func New(cfg Config) (*Dispatcher, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.MaxConnsPerHost == 0 {
		cfg.MaxConnsPerHost = 32
	}
	if cfg.MaxResponseBytes == 0 {
		cfg.MaxResponseBytes = 1 << 20
	}
	if cfg.Timeout < 0 || cfg.MaxConnsPerHost < 0 || cfg.MaxResponseBytes < 0 {
		return nil, fmt.Errorf("dispatch: negative setting in %+v", cfg)
	}
	d := &Dispatcher{cfg: cfg}
	d.lastSweep.Store(time.Now().UnixNano())
	return d, nil
}

// host returns addr's connection pool, creating it on first use.
func (d *Dispatcher) host(addr string) *hostPool {
	if hp, ok := d.hosts.Load(addr); ok {
		return hp.(*hostPool)
	}
	hp, _ := d.hosts.LoadOrStore(addr, newHostPool(addr, d.cfg.MaxConnsPerHost, d.cfg.MaxResponseBytes, !d.cfg.NoPipelining))
	return hp.(*hostPool)
}

// maxIdle is how long a connection may sit unused before it is closed.
const maxIdle = 30 * time.Second

// sweep closes connections idle for longer than maxIdle and forgets the
// pools left without any (their instances are gone or idle). Every Do
// calls it; it runs at most once per sweepEvery. A pool forgotten while
// in use is simply created again.
func (d *Dispatcher) sweep(now time.Time) {
	if now.UnixNano()-d.lastSweep.Load() < int64(sweepEvery) || !d.sweepMu.TryLock() {
		return
	}
	defer d.sweepMu.Unlock()
	d.lastSweep.Store(now.UnixNano())
	d.hosts.Range(func(k, v any) bool {
		if v.(*hostPool).closeIdle(now) == 0 {
			d.hosts.CompareAndDelete(k, v)
		}
		return true
	})
}

// Do sends r and waits for the answer or the timeout. A non-nil error is a
// transport failure (connection refused, reset, timeout) or ErrBadPath.
func (d *Dispatcher) Do(r *Request) (Result, error) {
	buf := heads.Get().(*[]byte)
	defer heads.Put(buf)
	head, dropped, err := build((*buf)[:0], r)
	if cap(head) <= maxKeptHead {
		*buf = head[:0] // keep the grown buffer for the next request
	}
	if err != nil {
		return Result{Dropped: dropped}, err
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = d.cfg.Timeout
	}
	now := time.Now()
	d.sweep(now)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	if err := d.host(r.Addr).do(head, r.Msg.Payload, r.Method == fasthttp.MethodHead, resp, now.Add(timeout)); err != nil {
		return Result{Dropped: dropped}, fmt.Errorf("%s %s: %w", r.Method, r.Addr, err)
	}
	res := Result{Status: resp.StatusCode(), Dropped: dropped}
	if r.KeepBody {
		res.Body = append([]byte(nil), resp.Body()...)
		res.ContentType = string(resp.Header.ContentType())
	}
	return res, nil
}

// heads recycles the buffers requests' heads are rendered in.
var heads = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// maxKeptHead bounds a head buffer kept for reuse (attributes may be large).
const maxKeptHead = 64 << 10

// build renders r's request line and headers (the CONTRACT's, plus
// Host, User-Agent and Content-Length) onto dst, ready for the wire; the
// body is the message's payload. It returns how many attributes were not
// forwarded. Every name and value is checked (tokens; no CR, LF or other
// control bytes), so nothing in an entry can split the request or add a
// header of its own; the path was checked by the rules, and again here.
func build(dst []byte, r *Request) ([]byte, int, error) {
	m := r.Msg
	if !validPath(r.Path) || !validToken(r.Method) {
		return dst, 0, fmt.Errorf("%q: %w", r.Path, ErrBadPath)
	}
	dropped := 0
	// content_type and correlation_id come from the stream's writers like
	// attributes do; a value a strict server would reject falls back to the
	// default instead of getting the message dead-lettered as a 400.
	ct, corr := m.ContentType, m.CorrelationID
	if !validValue(ct) {
		ct, dropped = "application/octet-stream", dropped+1
	}
	if !validValue(corr) {
		corr, dropped = m.ID, dropped+1
	}
	b := append(dst, r.Method...)
	b = append(b, ' ')
	b = append(b, r.Path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = appendValue(b, r.Addr)
	b = append(b, "\r\nUser-Agent: msgroute-gateway\r\nContent-Type: "...)
	b = append(b, ct...)
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(m.Payload)), 10)
	b = append(b, "\r\nX-Message-Id: "...)
	b = appendValue(b, m.ID)
	b = append(b, "\r\nX-Stream: "...)
	b = appendValue(b, m.Stream)
	b = append(b, "\r\nX-Route: "...)
	b = appendValue(b, r.Route)
	b = append(b, "\r\nX-Correlation-Id: "...)
	b = append(b, corr...)
	b = append(b, "\r\nIdempotency-Key: "...)
	b = appendValue(b, m.Stream)
	b = append(b, '/')
	b = appendValue(b, m.ID)
	b = append(b, '/')
	b = appendValue(b, r.Route)
	b = append(b, "\r\nX-Delivery-Attempt: "...)
	b = strconv.AppendInt(b, int64(r.Attempt), 10)
	b = append(b, "\r\n"...)
	for k, v := range m.Headers {
		if !validToken(k) || !validValue(v) {
			dropped++
			continue
		}
		b = appendAttrHeader(b, k)
		b = append(b, ": "...)
		b = append(b, v...)
		b = append(b, "\r\n"...)
	}
	return append(b, "\r\n"...), dropped, nil
}

// appendValue appends a header value the gateway itself chose (stream,
// route, entry ID, address), with any control byte turned into a space:
// they come from configuration and Redis, never expected to hold one.
func appendValue(dst []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return appendValueSlow(dst, v)
		}
	}
	return append(dst, v...)
}

func appendValueSlow(dst []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if (c < ' ' && c != '\t') || c == 0x7f {
			c = ' '
		}
		dst = append(dst, c)
	}
	return dst
}

// validPath accepts an origin-form path: it starts with "/", is not
// "//host" (authority form) and has no bytes that could split the request
// line.
func validPath(p string) bool {
	if len(p) == 0 || p[0] != '/' || (len(p) > 1 && p[1] == '/') || len(p) > 8192 {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c == 0x7f || c == '#' {
			return false
		}
	}
	return true
}

// appendAttrHeader renders attribute k as the header name X-Msg-K in
// canonical form (order_id -> X-Msg-Order_id, region -> X-Msg-Region).
func appendAttrHeader(dst []byte, k string) []byte {
	dst = append(dst, "X-Msg-"...)
	upper := true
	for i := 0; i < len(k); i++ {
		c := k[i]
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
		upper = c == '-'
	}
	return dst
}

// validToken reports whether s is an RFC 9110 token of sane length.
func validToken(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenChar[s[i]] {
			return false
		}
	}
	return true
}

// validValue rejects CR, LF, NUL and other control bytes (HTAB allowed),
// and values over 8 KiB.
func validValue(s string) bool {
	if len(s) > 8<<10 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

var tokenChar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()
