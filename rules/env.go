package rules

import (
	"github.com/expr-lang/expr/types"
	"github.com/expr-lang/expr/vm"
)

// Names of the expression environment's variables.
const (
	varStream     = "stream"
	varID         = "id"
	varHeaders    = "headers"
	varPayload    = "payload"
	varBody       = "body"
	varDeliveries = "deliveries"
)

// exprEnv is the typed environment every expression is checked against. The
// run-time environment is a map[string]any with the same keys, which lets the
// VM load variables with a plain map lookup (OpLoadFast) instead of reflection.
var exprEnv = types.Map{
	varStream:     types.String,
	varID:         types.String,
	varHeaders:    types.TypeOf(map[string]string(nil)),
	varPayload:    types.String,
	varBody:       types.Any,
	varDeliveries: types.Int,
}

// varSet records which environment variables a rule set's expressions read,
// so that per-message setup boxes only those (boxing a string allocates).
type varSet uint8

const (
	usesStream varSet = 1 << iota
	usesID
	usesHeaders
	usesPayload
	usesBody
	usesDeliveries
)

func varBit(name string) varSet {
	switch name {
	case varStream:
		return usesStream
	case varID:
		return usesID
	case varHeaders:
		return usesHeaders
	case varPayload:
		return usesPayload
	case varBody:
		return usesBody
	case varDeliveries:
		return usesDeliveries
	}
	return 0
}

// bodyState tracks the lazy, at-most-once decoding of a message's payload.
type bodyState uint8

const (
	bodyPending bodyState = iota // not decoded yet
	bodyJSON                     // decoded; body holds the value (possibly nil for "null")
	bodyInvalid                  // payload is not JSON; body is nil
)

// evalState is the per-call scratch space of Match: a reusable VM, the
// expression environment and the decoded body. It is pooled by the Set and
// never shared between goroutines while in use.
type evalState struct {
	vm    vm.VM
	env   map[string]any
	msg   *Message
	shape *shape // the observable part of the body; nil: all
	body  any
	state bodyState
	lists [][]int32 // candidate lists being merged
	pos   []int     // read position in each list
	// json holds the decoder's reusable objects and arrays.
	json jsonScratch
}

func newEvalState() *evalState {
	return &evalState{env: make(map[string]any, 6)}
}

// reset prepares the state for message m, filling only the variables the
// set's expressions use.
func (st *evalState) reset(m *Message, uses varSet, sh *shape) {
	if sh == nil {
		st.json.maps = st.json.maps[:0]
	}
	st.msg = m
	st.shape = sh
	st.body = nil
	st.state = bodyPending
	st.lists = st.lists[:0]
	st.pos = st.pos[:0]
	if uses&usesStream != 0 {
		st.env[varStream] = m.Stream
	}
	if uses&usesID != 0 {
		st.env[varID] = m.ID
	}
	if uses&usesHeaders != 0 {
		st.env[varHeaders] = m.Headers
	}
	if uses&usesPayload != 0 {
		st.env[varPayload] = m.Payload
	}
	if uses&usesDeliveries != 0 {
		st.env[varDeliveries] = int(m.Deliveries)
	}
	st.env[varBody] = nil
}

// release drops references to the message so a pooled state does not keep
// payloads alive.
func (st *evalState) release() {
	st.msg = nil
	st.body = nil
	clear(st.env)
	clear(st.lists)
	st.json.clear() // do not keep payload strings alive
}

// reuseMaps sizes the reusable decoder maps for a shape of n nodes.
func (st *evalState) reuseMaps(n int) {
	if cap(st.json.maps) < n {
		st.json.maps = make([]map[string]any, n)
	}
	st.json.maps = st.json.maps[:n]
}

// decodeBody decodes the payload once; later calls return the cached result.
func (st *evalState) decodeBody() (any, bodyState) {
	if st.state == bodyPending {
		st.body, st.state = decodeJSONShapeInto(st.msg.Payload, st.shape, &st.json)
		st.env[varBody] = st.body
	}
	return st.body, st.state
}
