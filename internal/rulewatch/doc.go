// Package rulewatch keeps the gateway's rule set current: it watches the
// rules path with fsnotify, debounces bursts of events, recompiles with
// rules.Load off the message path, and hands each new valid set to a publish
// callback (which swaps it into an atomic.Pointer). A set that fails to load
// is reported to onError and the previous set stays active. Reload forces a
// reload, for SIGHUP.
package rulewatch
