package store

import (
	"context"
	"errors"
	"time"
)

// memory holds budgets, blocks and the cache. PLACEHOLDER: to be written
// (bounded by maxKeys; golang.org/x/time/rate or a sliding window).
type memory struct{ maxKeys int }

var errUnimplemented = errors.New("store: not implemented yet")

func newMemory(maxKeys int) (*memory, error) { return &memory{maxKeys: maxKeys}, nil }

func (m *memory) spend(context.Context, string, Budget) (bool, error) { return false, errUnimplemented }
func (m *memory) spent(context.Context, string, Budget) (bool, error) { return true, errUnimplemented }
func (m *memory) block(context.Context, string, time.Duration) error  { return errUnimplemented }
func (m *memory) reset(context.Context, string) error                 { return errUnimplemented }
func (m *memory) remember(context.Context, string, string, time.Duration) error {
	return errUnimplemented
}
func (m *memory) recall(context.Context, string, string) (bool, error) {
	return false, errUnimplemented
}
func (m *memory) forget(context.Context, string) error { return errUnimplemented }
