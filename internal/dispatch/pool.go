package dispatch

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// hostPool holds the HTTP/1.1 connections to one instance, at most max of
// them. Below max, a request takes an idle connection or dials a new one,
// one request per connection as with any keep-alive client. At max, instead
// of waiting in the client for a connection to free up, it is pipelined on
// the least loaded one: written right away behind the requests already
// sent there, its answer read in order. The instance sees the same number
// of connections and the same concurrency (a server answers one
// connection's requests in turn), but the requests queued for it wait on
// the wire rather than in the gateway, so it never idles between answers,
// and the writes and reads of a queue of requests share system calls,
// which is most of the CPU a saturated gateway spends per message.
//
// Safe for concurrent use.
type hostPool struct {
	addr    string
	max     int
	maxBody int

	// pipelining lets requests beyond max queue on busy connections;
	// without it they wait for one to free up.
	pipelining bool

	// dialer connects to addr; a net.Dialer but in tests.
	dialer func(addr string, deadline time.Time) (net.Conn, error)

	mu      sync.Mutex
	conns   []*conn
	dialing int             // dials under way
	waiters []chan struct{} // requests waiting for a dial or a free connection
	nwait   atomic.Int32    // len(waiters), read without mu
}

func newHostPool(addr string, max, maxBody int, pipelining bool) *hostPool {
	return &hostPool{addr: addr, max: max, maxBody: maxBody, pipelining: pipelining, dialer: dialTCP}
}

func dialTCP(addr string, deadline time.Time) (net.Conn, error) {
	d := net.Dialer{Deadline: deadline}
	return d.Dial("tcp", addr)
}

// errNoConn is the timeout of a request that waited for a connection in
// vain (without pipelining, or while the pool was growing).
var errNoConn = fmt.Errorf("no free connection: %w", fasthttp.ErrTimeout)

// do writes the request (head, then body) on a connection and reads the
// answer into resp (without a body if skipBody: the answer to HEAD). A timeout
// reaching deadline before the answer breaks the connection: the requests
// queued behind on it fail too, with a transport error (they are retried
// like any transient failure). A request whose deadline passes while it is
// queued behind a slow answer fails when its turn comes, so it may wait
// past its deadline by up to the slow answer's remaining time.
func (p *hostPool) do(head []byte, body string, skipBody bool, resp *fasthttp.Response, deadline time.Time) error {
	err := p.try(head, body, skipBody, resp, deadline)
	if errors.Is(err, errStale) {
		// The connection was gone before this request reached the instance
		// (closed while idle: a keep-alive timeout; or broken before the
		// write): it goes once more, on another connection. Go's
		// http.Transport does the same for requests with an Idempotency-Key.
		err = p.try(head, body, skipBody, resp, deadline)
	}
	return err
}

// maxDials bounds the dials under way to one instance. A burst arriving
// at an idle instance would otherwise dial a connection per request up to
// the cap at once (CPU on both sides, and latency peaks of 50 ms in the
// gateway's first 100 ms at half load); with a bound, requests wait for a
// dial or for a connection to free up, and the pool grows to what the load
// keeps busy.
const maxDials = 4

// pick chooses the connection for one request and counts it there: an
// idle one; else a new one, below the cap and while fewer than maxDials
// dials are under way; else, at the cap and with pipelining, the least
// loaded (the request is pipelined). Otherwise it waits (until deadline)
// for a dial to finish or a connection to free up, and picks again: a
// request is never queued behind another below the cap, nor at all without
// pipelining. fresh means a new connection the caller must dial: it comes
// locked for writing so that requests pipelined on it meanwhile wait for
// the dial.
func (p *hostPool) pick(deadline time.Time) (c *conn, fresh bool, err error) {
	woken := false
	for {
		p.mu.Lock()
		var best *conn
		var bestLoad int32
		for _, x := range p.conns {
			if n := x.load.Load(); best == nil || n < bestLoad {
				best, bestLoad = x, n
				if n == 0 {
					break
				}
			}
		}
		atCap := len(p.conns) >= p.max
		switch {
		case best != nil && (bestLoad == 0 || atCap && p.pipelining):
		case !atCap && p.dialing < maxDials:
			best, fresh = &conn{pool: p}, true
			best.wmu.Lock()
			p.conns = append(p.conns, best)
			p.dialing++
		default:
			// A request woken for nothing (another took the connection)
			// keeps its place at the head of the line.
			w := make(chan struct{}, 1)
			if woken {
				p.waiters = slices.Insert(p.waiters, 0, w)
			} else {
				p.waiters = append(p.waiters, w)
			}
			p.nwait.Add(1)
			p.mu.Unlock()
			if err := p.wait(w, deadline); err != nil {
				return nil, false, err
			}
			woken = true
			continue
		}
		best.load.Add(1)
		best.writers.Add(1)
		p.mu.Unlock()
		return best, fresh, nil
	}
}

// wait waits for w to be woken, or for deadline.
func (p *hostPool) wait(w chan struct{}, deadline time.Time) error {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-w:
		return nil
	case <-t.C:
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if i := slices.Index(p.waiters, w); i >= 0 {
		p.waiters = slices.Delete(p.waiters, i, i+1)
		p.nwait.Add(-1)
	} else {
		p.wakeLocked() // w was woken meanwhile: pass it on
	}
	return errNoConn
}

// wakeLocked lets the longest waiting request pick again; p.mu is held.
// It is called when a dial ends, a connection frees up or one is dropped.
func (p *hostPool) wakeLocked() {
	if len(p.waiters) == 0 {
		return
	}
	w := p.waiters[0]
	p.waiters = slices.Delete(p.waiters, 0, 1)
	p.nwait.Add(-1)
	w <- struct{}{}
}

func (p *hostPool) remove(c *conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.conns {
		if x == c {
			p.conns[i] = p.conns[len(p.conns)-1]
			p.conns[len(p.conns)-1] = nil
			p.conns = p.conns[:len(p.conns)-1]
			p.wakeLocked() // room below the cap
			return
		}
	}
}

// closeIdle closes the connections idle since before now-maxIdle and
// returns how many are left.
func (p *hostPool) closeIdle(now time.Time) int {
	p.mu.Lock()
	var idle []*conn
	kept := p.conns[:0]
	for _, c := range p.conns {
		// load is counted under mu: at 0 nobody is using c or about to.
		if from := c.idleFrom.Load(); c.load.Load() == 0 && from != 0 && now.UnixNano()-from > int64(maxIdle) {
			idle = append(idle, c)
			continue
		}
		kept = append(kept, c)
	}
	clear(p.conns[len(kept):])
	p.conns = kept
	left := len(kept)
	p.mu.Unlock()
	for _, c := range idle {
		c.fail(errIdle)
	}
	return left
}

var errIdle = errors.New("connection closed after idling")

// connCount is the number of open (or opening) connections.
func (p *hostPool) connCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}
