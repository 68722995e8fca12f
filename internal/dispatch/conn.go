package dispatch

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

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

// errStale wraps the failure of a request on a connection that was gone
// before the request could reach the instance: it was alone on a reused
// connection and got not a byte back (the instance had closed it while
// idle), or the connection broke before it was written. do sends it once
// more.
var errStale = errors.New("connection closed before the request reached the instance")

// try is one attempt of do: pick a connection, queue and write the
// request on it, wait for the turn, read the answer. A failure that shows
// the connection was stale comes back wrapping errStale.
func (p *hostPool) try(head []byte, body string, skipBody bool, resp *fasthttp.Response, deadline time.Time) error {
	c, fresh, err := p.pick(deadline)
	if err != nil {
		return err
	}
	defer c.load.Add(-1)
	if fresh {
		if err := c.dial(deadline); err != nil {
			return err
		}
	} else {
		c.wmu.Lock()
	}
	cl := calls.Get().(*call)
	defer calls.Put(cl)
	cl.err = nil

	c.qmu.Lock()
	if err := c.err; err != nil {
		// Broken between the pick and the write: nothing was sent.
		c.qmu.Unlock()
		c.writers.Add(-1)
		c.wmu.Unlock()
		return fmt.Errorf("%w: %w", errStale, err)
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
