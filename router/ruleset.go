package router

import (
	"sync/atomic"
	"time"

	"github.com/msgroute/gateway/rules"
)

// RuleHolder publishes the active rule set. Readers load it once per
// message; a reload swaps the pointer, so in-flight messages finish under
// the set they started with. Safe for concurrent use.
type RuleHolder struct {
	set     atomic.Pointer[rules.Set]
	lastErr atomic.Pointer[reloadError]
}

type reloadError struct {
	err string
	at  time.Time
}

// NewRuleHolder returns a holder publishing set (which must not be nil).
func NewRuleHolder(set *rules.Set) *RuleHolder {
	h := &RuleHolder{}
	h.set.Store(set)
	return h
}

// Load returns the active set.
func (h *RuleHolder) Load() *rules.Set { return h.set.Load() }

// Store makes set the active one (a reload succeeded): the last rejected
// reload's error is cleared, it no longer describes the rules in force.
func (h *RuleHolder) Store(set *rules.Set) {
	h.set.Store(set)
	h.lastErr.Store(nil)
}

// Fail records a rejected reload; the active set stays.
func (h *RuleHolder) Fail(err error) {
	h.lastErr.Store(&reloadError{err: err.Error(), at: time.Now()})
}

// RuleStatus is the /rules view of the active set.
type RuleStatus struct {
	Version     string        `json:"version"`
	LoadedAt    time.Time     `json:"loaded_at"`
	Files       []string      `json:"files"`
	Default     DefaultStatus `json:"default"`
	Routes      []RouteStatus `json:"routes"`
	LastError   string        `json:"last_error"`
	LastErrorAt *time.Time    `json:"last_error_at,omitempty"`
}

// DefaultStatus is the default action for unmatched messages.
type DefaultStatus struct {
	Action  string `json:"action"`
	Service string `json:"service,omitempty"`
}

// RouteStatus is one route and its counters.
type RouteStatus struct {
	Name       string   `json:"name"`
	Service    string   `json:"service"`
	Streams    []string `json:"streams,omitempty"`
	Tags       []string `json:"tags,omitempty"`
	Priority   int      `json:"priority"`
	Continue   bool     `json:"continue"`
	File       string   `json:"file"`
	Line       int      `json:"line"`
	Matches    uint64   `json:"matches"`
	EvalErrors uint64   `json:"eval_errors"`
}

// Status describes the active set for /rules.
func (h *RuleHolder) Status() RuleStatus {
	s := h.set.Load()
	d := s.Default()
	st := RuleStatus{
		Version: s.Version(), LoadedAt: s.LoadedAt(), Files: s.Files(),
		Default: DefaultStatus{Action: string(d.Action), Service: d.Service},
		Routes:  make([]RouteStatus, 0, len(s.Routes())),
	}
	for _, r := range s.Routes() {
		st.Routes = append(st.Routes, RouteStatus{
			Name: r.Name, Service: r.Service, Streams: r.Streams, Tags: r.Tags, Priority: r.Priority,
			Continue: r.Continue, File: r.File, Line: r.Line, Matches: r.Matches(), EvalErrors: r.EvalErrors(),
		})
	}
	if e := h.lastErr.Load(); e != nil {
		st.LastError = e.err
		at := e.at
		st.LastErrorAt = &at
	}
	return st
}
