package admin

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
)

type reloaderFunc func(context.Context) (ReloadResult, error)

func (f reloaderFunc) Reload(ctx context.Context) (ReloadResult, error) { return f(ctx) }

// TestReloadOp: the reload op reaches the reloader and carries back what
// changed, or the problems that kept the running configuration; a process
// without a reloader refuses it.
func TestReloadOp(t *testing.T) {
	h := newHarness(t, "")
	h.start(t)
	if _, err := call(t, h.path, Request{Op: OpReload}); !errors.Is(err, ErrRefused) {
		t.Fatalf("reload without a reloader: %v, want refused", err)
	}

	problems := []string{"servers[0].failmode: must be safe or secure"}
	var refuse atomic.Bool
	h2 := newHarness(t, "")
	h2.srv.WithReloader(reloaderFunc(func(context.Context) (ReloadResult, error) {
		if !refuse.Load() {
			return ReloadResult{Changes: "sections added: wiki"}, nil
		}
		return ReloadResult{Problems: problems}, errors.New("configuration not reloaded")
	}))
	h2.start(t)
	resp, err := call(t, h2.path, Request{Op: OpReload})
	if err != nil || resp.Reload == nil || resp.Reload.Changes != "sections added: wiki" {
		t.Fatalf("reload: %+v, %v", resp, err)
	}
	refuse.Store(true)
	resp, err = call(t, h2.path, Request{Op: OpReload})
	if !errors.Is(err, ErrRefused) || resp.Reload == nil || !slices.Equal(resp.Reload.Problems, problems) {
		t.Fatalf("refused reload: %+v, %v; want the problems", resp, err)
	}
	if _, err := call(t, h2.path, Request{Op: OpReload, Servers: []string{"x"}}); !errors.Is(err, ErrRefused) {
		t.Fatalf("reload with servers: %v, want refused", err)
	}
}
