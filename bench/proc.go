package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one child process (redis-server, consul, the gateway or the
// floor) in its own process group, its output kept for failure reports.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *tailBuffer
	done chan struct{}
	err  error // valid after done is closed
}

// startProc starts bin with args. Extra env entries are appended to ours.
// stdout, when not nil, also receives the child's standard output.
func startProc(name, bin string, env []string, stdout io.Writer, args ...string) (*proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out := &tailBuffer{max: 1 << 20}
	cmd.Stderr = out
	cmd.Stdout = out
	if stdout != nil {
		cmd.Stdout = io.MultiWriter(out, stdout)
	}
	// Pdeathsig: a bench killed by ^C or a timeout leaves no servers behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid is the child's process ID.
func (p *proc) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM to the group, SIGKILL after grace, and waits. It
// returns the process's exit error (nil for exit 0).
func (p *proc) Stop(grace time.Duration) error {
	if !p.Exited() {
		_ = syscall.Kill(-p.Pid(), syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			// SIGQUIT first: a Go process dumps its goroutines into the
			// output we keep, which shows where shutdown hung.
			_ = syscall.Kill(p.Pid(), syscall.SIGQUIT)
			select {
			case <-p.done:
			case <-time.After(2 * time.Second):
				_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
				<-p.done
			}
			return fmt.Errorf("%s did not stop within %v: sent SIGQUIT (goroutine dump in its log)", p.name, grace)
		}
	}
	return p.err
}

// Output is the tail of the child's combined output.
func (p *proc) Output() string { return p.out.String() }

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// procStat is what /proc says about a process's memory and CPU.
type procStat struct {
	RSS  int64         // VmRSS, bytes
	HWM  int64         // VmHWM (peak RSS), bytes
	CPU  time.Duration // utime + stime
	Live bool
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times: 100 on every
// Linux architecture Go supports, and not exposed without cgo.
const clockTicks = 100

// readProcStat reads /proc/PID/status and /proc/PID/stat.
func readProcStat(pid int) (procStat, error) {
	var s procStat
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, fmt.Errorf("read status: %w", err)
	}
	for _, line := range bytes.Split(status, []byte("\n")) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		switch string(k) {
		case "VmRSS":
			s.RSS = parseKB(v)
		case "VmHWM":
			s.HWM = parseKB(v)
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, fmt.Errorf("read stat: %w", err)
	}
	// The command name (field 2) may hold spaces; fields after it start
	// past the last ')'. utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return s, fmt.Errorf("parse /proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return s, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return s, fmt.Errorf("parse /proc/%d/stat utime/stime: %q %q", pid, f[11], f[12])
	}
	s.CPU = time.Duration(ut+st) * time.Second / clockTicks
	s.Live = true
	return s, nil
}

func parseKB(v []byte) int64 {
	f := strings.Fields(string(v))
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.ParseInt(f[0], 10, 64)
	return n << 10
}
