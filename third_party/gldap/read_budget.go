// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap

import (
	"errors"
	"sync/atomic"
)

// freeRequestBytes of every request are read without taking budget from
// WithMaxBufferedBytes: every connection's reader buffers that much anyway,
// and binds and searches fit in it, so they work while large requests have
// taken all of it.
const freeRequestBytes = 4 << 10

// ReasonBufferBudget is the Reason of a ConnClosed event (see
// WithConnectionEvents) for a connection closed because its request would
// exceed WithMaxBufferedBytes.
const ReasonBufferBudget = "buffer_budget"

// errServerBusy: a request's next bytes would exceed WithMaxBufferedBytes.
var errServerBusy = errors.New("server busy: too many bytes of requests being received")

// byteBudget is the server-wide budget of WithMaxBufferedBytes.
type byteBudget struct {
	max  int64
	used atomic.Int64
}

// newByteBudget is a budget of n bytes; nil (no budget) if n <= 0.
func newByteBudget(n int) *byteBudget {
	if n <= 0 {
		return nil
	}
	return &byteBudget{max: int64(n)}
}

// take takes n bytes of the budget, or none and returns false if fewer are
// left.
func (b *byteBudget) take(n int) bool {
	for {
		used := b.used.Load()
		if used+int64(n) > b.max {
			return false
		}
		if b.used.CompareAndSwap(used, used+int64(n)) {
			return true
		}
	}
}

// give returns n bytes taken before.  A nil budget takes nothing.
func (b *byteBudget) give(n int) {
	if b != nil && n != 0 {
		b.used.Add(-int64(n))
	}
}

// bufferedBytes is how much of the WithMaxBufferedBytes budget is taken.
func (s *Server) bufferedBytes() int64 {
	if s.readBudget == nil {
		return 0
	}
	return s.readBudget.used.Load()
}
