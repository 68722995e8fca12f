package dispatch

import (
	"bufio"
	"errors"
	"fmt"
	"io"
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
	maxIdle time.Duration

	// slots, without pipelining, holds a token per request in flight, at
	// most max: every request then finds an idle connection or room to
	// dial one. nil with pipelining.
	slots chan struct{}

	// dialer connects to addr; a net.Dialer but in tests.
	dialer func(addr string, deadline time.Time) (net.Conn, error)

	mu      sync.Mutex
	conns   []*conn
	dialing int             // dials under way
	waiters []chan struct{} // requests waiting for a dial or a free connection
	nwait   atomic.Int32    // len(waiters), read without mu
}

// conn is one connection and the requests written on it, answered in
// order. Exactly one caller at a time reads: the one whose request is at
// the head of the queue ("has the turn"); when its answer is read it hands
// the turn to the next. Nobody else reads, so nothing is parked per
// connection and an answer already buffered costs the next caller no
// system call.
type conn struct {
	pool  *hostPool
	nc    net.Conn
	br    *bufio.Reader
	nread countingReader // nc as br reads it; owned by the turn

	// load is the requests picked for this connection and not finished;
	// it steers the pick (under pool.mu) toward idle and lightly loaded
	// connections.
	load atomic.Int32
	// writers counts callers between pick and the end of their write: the
	// last one flushes, so requests written back to back leave in one
	// system call.
	writers atomic.Int32

	wmu sync.Mutex // serializes writes; held by the dialer until connected
	bw  *bufio.Writer
	wdl int64 // write deadline set on nc (unix ns); under wmu

	rdl int64 // read deadline set on nc (unix ns); owned by the turn

	qmu   sync.Mutex
	queue []*call // written and unanswered; queue[0] has the turn
	err   error   // set once the connection is broken; final

	idleFrom atomic.Int64 // unix ns when the queue last emptied; 0 before
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// call is one request on a connection.
type call struct {
	turn chan struct{} // receives the turn (or the news of a failure), once
	err  error         // the failure, set before turn is sent
}

var calls = sync.Pool{New: func() any { return &call{turn: make(chan struct{}, 1)} }}

// errConnClosed is the error of requests queued behind an answer that
// closed the connection.
var errConnClosed = errors.New("connection closed by the instance before answering")

func newHostPool(addr string, max, maxBody int, maxIdle time.Duration, pipelining bool) *hostPool {
	p := &hostPool{addr: addr, max: max, maxBody: maxBody, maxIdle: maxIdle, dialer: dialTCP}
	if !pipelining {
		p.slots = make(chan struct{}, max)
	}
	return p
}

func dialTCP(addr string, deadline time.Time) (net.Conn, error) {
	d := net.Dialer{Deadline: deadline}
	return d.Dial("tcp", addr)
}

// errNoConn is the timeout of a request that found no connection in time
// (without pipelining, or while the pool was growing).
var errNoConn = fmt.Errorf("no free connection: %w", fasthttp.ErrTimeout)

// acquire takes a slot (without pipelining), waiting until deadline.
func (p *hostPool) acquire(deadline time.Time) error {
	select {
	case p.slots <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case p.slots <- struct{}{}:
		return nil
	case <-t.C:
		return errNoConn
	}
}

// do writes the request (head, then body) on a connection and reads the
// answer into resp (without a body if skipBody: the answer to HEAD). A timeout
// reaching deadline before the answer breaks the connection: the requests
// queued behind on it fail too, with a transport error (they are retried
// like any transient failure). A request whose deadline passes while it is
// queued behind a slow answer fails when its turn comes, so it may wait
// past its deadline by up to the slow answer's remaining time.
func (p *hostPool) do(head []byte, body string, skipBody bool, resp *fasthttp.Response, deadline time.Time) error {
	if p.slots != nil {
		if err := p.acquire(deadline); err != nil {
			return err
		}
		defer func() { <-p.slots }()
	}
	err := p.try(head, body, skipBody, resp, deadline)
	if errors.Is(err, errStale) {
		// The instance had closed the idle connection (keep-alive timeout)
		// before this request reached it: nothing was answered, and the
		// request goes once more, on another connection. Go's http.Transport
		// does the same for requests carrying an Idempotency-Key.
		err = p.try(head, body, skipBody, resp, deadline)
	}
	return err
}

// errStale wraps the failure of a request that was alone on a reused
// connection and got not a byte back: the instance closed it while idle.
var errStale = errors.New("idle connection closed by the instance")

func (p *hostPool) try(head []byte, body string, skipBody bool, resp *fasthttp.Response, deadline time.Time) error {
	c, fresh, err := p.pick(deadline)
	if err != nil {
		return err
	}
	if fresh {
		if err := c.dial(deadline); err != nil {
			return err
		}
	} else {
		c.wmu.Lock()
	}
	cl := calls.Get().(*call)
	defer c.load.Add(-1)
	defer calls.Put(cl)
	cl.err = nil

	c.qmu.Lock()
	if err := c.err; err != nil {
		c.qmu.Unlock()
		c.writers.Add(-1)
		c.wmu.Unlock()
		return err
	}
	c.queue = append(c.queue, cl)
	first := len(c.queue) == 1
	reused := first && c.idleFrom.Load() != 0 // idle since an earlier answer
	c.qmu.Unlock()
	werr := c.setWriteDeadline(deadline)
	if werr == nil {
		_, werr = c.bw.Write(head)
	}
	if werr == nil {
		_, werr = c.bw.WriteString(body)
	}
	if c.writers.Add(-1) == 0 && werr == nil {
		werr = c.bw.Flush()
	}
	c.wmu.Unlock()
	if werr != nil {
		c.fail(werr)
	}
	if !first {
		// Every caller not at the head when it queued is sent exactly one
		// signal: the turn, or the failure that emptied the queue.
		<-cl.turn
	}
	if werr != nil {
		if reused {
			return fmt.Errorf("%w: %w", errStale, werr)
		}
		return werr
	}
	if cl.err != nil {
		return cl.err
	}
	reused = reused && c.br.Buffered() == 0
	before := c.nread.n
	err = c.read(cl, skipBody, resp, deadline)
	if err != nil && reused && c.nread.n == before && !errors.Is(err, fasthttp.ErrTimeout) {
		return fmt.Errorf("%w: %w", errStale, err)
	}
	return err
}

// read reads the answer of cl, which has the turn, then hands the turn on.
func (c *conn) read(cl *call, skipBody bool, resp *fasthttp.Response, deadline time.Time) error {
	err := c.setReadDeadline(deadline)
	if err == nil {
		resp.SkipBody = skipBody
		err = resp.ReadLimitBody(c.br, c.pool.maxBody)
	}
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			err = fasthttp.ErrTimeout
		}
		c.fail(err)
		return err
	}
	c.qmu.Lock()
	if len(c.queue) > 0 && c.queue[0] == cl {
		copy(c.queue, c.queue[1:])
		c.queue[len(c.queue)-1] = nil
		c.queue = c.queue[:len(c.queue)-1]
	}
	if resp.ConnectionClose() {
		// Nothing queued behind will be answered: all of it fails.
		c.breakLocked(errConnClosed, 0)
		c.qmu.Unlock()
		return nil
	}
	var next *call
	if len(c.queue) > 0 {
		next = c.queue[0]
	} else {
		c.idleFrom.Store(time.Now().UnixNano())
	}
	c.qmu.Unlock()
	if next != nil {
		next.turn <- struct{}{}
	} else if c.pool.nwait.Load() > 0 {
		c.pool.mu.Lock()
		c.pool.wakeLocked() // c is idle
		c.pool.mu.Unlock()
	}
	return nil
}

// Deadlines are rounded up to these steps and set on the connection only
// when the rounded value changes: setting one costs a clock read and a
// timer update, and back-to-back requests mostly share it. An answer may
// so take up to readStep longer than its timeout to fail.
const (
	readStep  = int64(10 * time.Millisecond)
	writeStep = int64(100 * time.Millisecond)
)

func roundUp(t time.Time, step int64) int64 {
	n := t.UnixNano()
	return n + (step-n%step)%step
}

func (c *conn) setWriteDeadline(t time.Time) error {
	if d := roundUp(t, writeStep); d != c.wdl {
		c.wdl = d
		return c.nc.SetWriteDeadline(time.Unix(0, d))
	}
	return nil
}

func (c *conn) setReadDeadline(t time.Time) error {
	if d := roundUp(t, readStep); d != c.rdl {
		c.rdl = d
		return c.nc.SetReadDeadline(time.Unix(0, d))
	}
	return nil
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
// dials are under way; else, at the cap, the least loaded (the request is
// pipelined). Below the cap with maxDials dials under way it waits (until
// deadline) for a dial to finish or a connection to free up: a request is
// never queued behind another below the cap. fresh means a new connection
// the caller must dial: it comes locked for writing so that requests
// pipelined on it meanwhile wait for the dial.
func (p *hostPool) pick(deadline time.Time) (c *conn, fresh bool, err error) {
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
		switch {
		case best != nil && (bestLoad == 0 || len(p.conns) >= p.max):
		case p.dialing < maxDials:
			best, fresh = &conn{pool: p}, true
			best.wmu.Lock()
			p.conns = append(p.conns, best)
			p.dialing++
		default:
			w := make(chan struct{}, 1)
			p.waiters = append(p.waiters, w)
			p.nwait.Add(1)
			p.mu.Unlock()
			if err := p.wait(w, deadline); err != nil {
				return nil, false, err
			}
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

// dial connects c, which the caller holds locked for writing. On failure
// the connection is dropped and the callers queued on it fail as well.
func (c *conn) dial(deadline time.Time) error {
	nc, err := c.pool.dialer(c.pool.addr, deadline)
	c.pool.mu.Lock()
	c.pool.dialing--
	c.pool.wakeLocked()
	c.pool.mu.Unlock()
	if err != nil {
		c.qmu.Lock()
		c.err = fmt.Errorf("dial: %w", err)
		c.qmu.Unlock()
		c.pool.remove(c)
		c.writers.Add(-1)
		c.load.Add(-1)
		c.wmu.Unlock()
		return c.err
	}
	c.nc = nc
	c.nread.r = nc
	c.br = bufio.NewReaderSize(&c.nread, 4096)
	c.bw = bufio.NewWriterSize(nc, 4096)
	return nil
}

// fail breaks c with err: it is closed and forgotten, and every caller
// queued on it except the head (which learns it from its own read) is told.
func (c *conn) fail(err error) {
	c.qmu.Lock()
	c.breakLocked(err, 1)
	c.qmu.Unlock()
}

// breakLocked closes c (once) and fails the queued callers from index
// from on. Lock order: qmu, then pool.mu.
func (c *conn) breakLocked(err error, from int) {
	if c.err == nil {
		c.err = err
		c.pool.remove(c)
		_ = c.nc.Close()
	}
	if len(c.queue) > from {
		for _, cl := range c.queue[from:] {
			cl.err = err
			cl.turn <- struct{}{}
		}
		clear(c.queue[from:])
		c.queue = c.queue[:from]
	}
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
		if from := c.idleFrom.Load(); c.load.Load() == 0 && from != 0 && now.UnixNano()-from > int64(p.maxIdle) {
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
