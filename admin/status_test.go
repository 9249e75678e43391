package admin

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ldapgate/ldapgate/health"
)

// TestProgramStatus: the "status" op returns what the function the server
// was given says, whole or for the sections asked; unknown sections and
// "for" are refused; a server given no function refuses the op and keeps
// serving the others.
func TestProgramStatus(t *testing.T) {
	st := health.NewStatus("1.2.3", t0, t0.Add(time.Hour), []health.Section{
		{Name: "ldap", DuoState: "ok", DirectoryUp: true, Directory: "corp",
			DirectoryURLs: []health.DirectoryURL{{URL: "ldap://dc1:389", Up: true}, {URL: "ldap://dc2:389", Error: "connection refused"}}},
		{Name: "vpn", DuoState: "unreachable"},
	})
	h := newHarness(t, "")
	var calls atomic.Int64
	h.srv.WithStatus(func() health.Status { calls.Add(1); return st })
	h.start(t)

	resp, err := call(t, h.path, Request{Op: OpProgramStatus})
	if err != nil || resp.Status == nil {
		t.Fatalf("status: %+v %v", resp, err)
	}
	got := resp.Status
	if got.Version != "1.2.3" || got.UptimeSeconds != 3600 || len(got.Sections) != 2 ||
		got.Sections[0].DirectoryURLs[1].Error != "connection refused" {
		t.Fatalf("status = %+v", got)
	}
	resp, err = call(t, h.path, Request{Op: OpProgramStatus, Servers: []string{"vpn"}})
	if err != nil || len(resp.Status.Sections) != 1 || resp.Status.Sections[0].Name != "vpn" {
		t.Fatalf("status of vpn: %+v %v", resp, err)
	}
	for _, req := range []Request{
		{Op: OpProgramStatus, Servers: []string{"vpn", "mail"}},
		{Op: OpProgramStatus, For: "1h"},
	} {
		if resp, err := call(t, h.path, req); !errors.Is(err, ErrRefused) || resp.Status != nil {
			t.Errorf("%+v: %+v %v, want refused", req, resp, err)
		}
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("status function called %d times, want once per accepted or filtered request (3)", n)
	}

	bare := newHarness(t, "")
	bare.start(t)
	if _, err := call(t, bare.path, Request{Op: OpProgramStatus}); !errors.Is(err, ErrRefused) ||
		!strings.Contains(err.Error(), "not available") {
		t.Fatalf("status without a function: %v", err)
	}
	if _, err := call(t, bare.path, Request{Op: OpStatus}); err != nil {
		t.Fatalf("primary-only status after a refused status: %v", err)
	}
}
