package duoclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ldapgate/ldapgate/failmode"
)

var allStages = []failmode.Stage{failmode.StagePreauth, failmode.StageAuth, failmode.StageCheck}

// duoAddr is where the wrapped errors below pretend to have dialled.
var duoAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 443}

// asDialed wraps err the way http.Transport returns a failed dial.
func asDialed(err error) error {
	return &url.Error{Op: "Post", URL: "https://api-test.duosecurity.com/auth/v2/preauth", Err: err}
}

// dialFailure is the error net.Dialer returns when syscall fails with errno.
func dialFailure(syscallName string, errno syscall.Errno) error {
	return &net.OpError{Op: "dial", Net: "tcp", Addr: duoAddr, Err: os.NewSyscallError(syscallName, errno)}
}

// quietTiming is the timing of a call that neither the caller nor the
// deadline ended.
func quietTiming() timing {
	return timing{parent: context.Background(), call: context.Background(), start: time.Now(), budget: time.Second, phase: time.Second}
}

// TestLocalFaults: an errno that says this process is short of something
// is Local at every stage, wherever net put it, and before any transport
// rule (a dial OpError would otherwise read "connect failed").
func TestLocalFaults(t *testing.T) {
	// The resolver's own socket failed; dialContext adds the fault to the
	// *net.DNSError that only has its text.
	resolverFault := func(errno syscall.Errno) error {
		dns := &net.DNSError{Err: "dial udp 127.0.0.53:53: socket: " + errno.Error(), Name: "api-test.duosecurity.com", Server: "127.0.0.53:53", IsTemporary: true}
		cause := &net.OpError{Op: "dial", Net: "udp", Addr: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 53), Port: 53}, Err: os.NewSyscallError("socket", errno)}
		return &resolverError{err: &net.OpError{Op: "dial", Net: "tcp", Err: dns}, cause: cause}
	}
	wraps := []struct {
		name string
		wrap func(syscall.Errno) error
	}{
		{"socket", func(e syscall.Errno) error { return asDialed(dialFailure("socket", e)) }},
		{"connect", func(e syscall.Errno) error { return asDialed(dialFailure("connect", e)) }},
		{"write", func(e syscall.Errno) error {
			return asDialed(&net.OpError{Op: "write", Net: "tcp", Addr: duoAddr, Err: os.NewSyscallError("write", e)})
		}},
		{"resolver socket", func(e syscall.Errno) error { return asDialed(resolverFault(e)) }},
	}
	for _, errno := range localErrnos {
		for _, w := range wraps {
			for _, stage := range allStages {
				t.Run(fmt.Sprintf("%s/%s/%s", errno, w.name, stage), func(t *testing.T) {
					err := w.wrap(errno)
					got := classify(stage, err, quietTiming())
					wantFailure(t, got, failmode.Local, stage, "local error: "+errno.Error())
					if !errors.Is(got, errno) {
						t.Errorf("the classified error lost %v: %v", errno, got)
					}
				})
			}
		}
	}
}

// TestRemoteErrnosStayTransport: errnos that report what the network or
// Duo did are still transport evidence, not local faults.
func TestRemoteErrnosStayTransport(t *testing.T) {
	for _, tc := range []struct {
		errno  syscall.Errno
		detail string
	}{
		{syscall.ECONNREFUSED, "connection refused"},
		{syscall.ECONNRESET, "connection reset"},
		{syscall.EHOSTUNREACH, "no route to host"},
		{syscall.ENETUNREACH, "no route to host"},
	} {
		for _, stage := range allStages {
			t.Run(fmt.Sprintf("%s/%s", tc.errno, stage), func(t *testing.T) {
				got := classify(stage, asDialed(dialFailure("connect", tc.errno)), quietTiming())
				wantFailure(t, got, transient(stage), stage, tc.detail)
			})
		}
	}
}

// TestDNSErrorText pins the limit the table in classify.go documents: a
// *net.DNSError whose text names a local fault, with no errno in the chain,
// is classified by its type (a DNS failure), never by its text.
func TestDNSErrorText(t *testing.T) {
	dns := &net.DNSError{Err: "dial udp 127.0.0.53:53: socket: too many open files", Name: "api-test.duosecurity.com", IsTemporary: true}
	if errors.Is(dns, syscall.EMFILE) {
		t.Fatal("net.DNSError now unwraps to the errno: revisit dialContext and the table")
	}
	got := classify(failmode.StagePreauth, asDialed(&net.OpError{Op: "dial", Net: "tcp", Err: dns}), quietTiming())
	wantFailure(t, got, failmode.Unreachable, failmode.StagePreauth, "dns lookup failed")
}

// TestUnclassifiedIsLocal: an error nobody recognises, bare, in a
// *url.Error or as a dial *net.OpError, is not evidence about Duo.
func TestUnclassifiedIsLocal(t *testing.T) {
	odd := errors.New("something nobody planned for")
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"bare", odd},
		{"in a url.Error", asDialed(odd)},
		{"dial OpError", asDialed(&net.OpError{Op: "dial", Net: "tcp", Addr: duoAddr, Err: odd})},
		{"read OpError", asDialed(&net.OpError{Op: "read", Net: "tcp", Addr: duoAddr, Err: odd})},
		{"unlisted errno", asDialed(dialFailure("connect", syscall.EINVAL))},
	} {
		for _, stage := range allStages {
			t.Run(tc.name+"/"+stage.String(), func(t *testing.T) {
				wantFailure(t, classify(stage, tc.err, quietTiming()), failmode.Local, stage, "unclassified error")
			})
		}
	}
	// A TLS alert the server sent is evidence, though it is an OpError too.
	alert := asDialed(&net.OpError{Op: "remote error", Err: errors.New("tls: handshake failure")})
	wantFailure(t, classify(failmode.StagePreauth, alert, quietTiming()), failmode.Unreachable, failmode.StagePreauth, "TLS handshake failed")
}

// TestRealEMFILE runs out of descriptors for real, in a child process (the
// limit is process-wide: lowering it here would hurt every other test), and
// checks what a dial to Duo by address and a lookup of Duo's name then
// return. It is the test for dialContext's resolver: without it, the lookup
// is an Unreachable "dns lookup failed".
func TestRealEMFILE(t *testing.T) {
	if os.Getenv("DUOCLIENT_EMFILE_CHILD") == "1" {
		emfileChild(t)
		return
	}
	if testing.Short() {
		t.Skip("starts a child process")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestRealEMFILE$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "DUOCLIENT_EMFILE_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), emfileDone) {
		t.Fatalf("child: %v\n%s", err, out)
	}
	t.Logf("child:\n%s", out)
}

const emfileDone = "emfile child: all checks ran"

// emfileChild runs in the child: a fake Duo and two clients first, then no
// free descriptor, then the calls.
func emfileChild(t *testing.T) {
	f := newFakeDuo(t)
	byAddr, obs := newClient(t, f.host())
	_, port, _ := net.SplitHostPort(f.host())
	// A name only DNS could answer; the lookup never gets that far.
	byName, _ := newClient(t, net.JoinHostPort("api-emfile.ldapgate.invalid", port))

	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	const low = 256
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: low, Max: lim.Max}); err != nil {
		t.Fatal(err)
	}
	var hog []*os.File
	defer func() {
		for _, h := range hog {
			_ = h.Close()
		}
	}()
	for range low {
		h, err := os.Open(os.DevNull)
		if err != nil {
			if !errors.Is(err, syscall.EMFILE) {
				t.Fatalf("filling the descriptor table: %v", err)
			}
			break
		}
		hog = append(hog, h)
	}
	if _, err := os.Open(os.DevNull); !errors.Is(err, syscall.EMFILE) {
		t.Fatalf("descriptors left after %d opens: %v", len(hog), err)
	}

	_, err := byAddr.Verify(context.Background(), failmode.Attempt{Username: "alice", Factor: failmode.FactorPush})
	wantFailure(t, err, failmode.Local, failmode.StagePreauth, "local error: too many open files")
	if !errors.Is(err, syscall.EMFILE) {
		t.Errorf("dial by address: EMFILE is not in the chain: %v", err)
	}
	t.Logf("dial by address: %v", err)
	if got := obs.got(); len(got) != 1 || got[0].Class != failmode.Local {
		t.Errorf("observed %+v, want one local_error", got)
	}

	err = byName.Check(context.Background())
	wantFailure(t, err, failmode.Local, failmode.StageCheck, "local error: too many open files")
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) {
		t.Errorf("lookup: want the *net.DNSError kept in the chain: %v", err)
	}
	t.Logf("lookup by name: %v", err)
	fmt.Println(emfileDone)
}
