package testdirectory_test

import (
	"fmt"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/jimlambrt/gldap/testdirectory"
)

// failT is a TestingT that records a failure and ends the goroutine, as
// testing.T's FailNow does.
type failT struct {
	mu     sync.Mutex
	failed bool
	msgs   []string
}

func (f *failT) Errorf(format string, args ...interface{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failed = true
	f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
}
func (f *failT) FailNow() {
	f.mu.Lock()
	f.failed = true
	f.mu.Unlock()
	runtime.Goexit()
}
func (f *failT) Log(...interface{}) {}

// TestPatch_StartListensItself (patch 31): Start binds the port itself. A
// port it cannot have is a failure at once, where Start used to wait for
// Ready forever (the port it picked with FreePort could be taken before
// Run bound it); without a port it gets one from the kernel and reports it.
func TestPatch_StartListensItself(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	ft := &failT{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		testdirectory.Start(ft, testdirectory.WithNoTLS(ft), testdirectory.WithPort(ft, taken.Addr().(*net.TCPAddr).Port))
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Start on a taken port did not return within 10s")
	}
	if !ft.failed {
		t.Fatal("Start on a taken port did not fail")
	}

	d := testdirectory.Start(t, testdirectory.WithNoTLS(t))
	if d.Port() == 0 {
		t.Fatal("Start without a port reports port 0")
	}
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", d.Port()))
	if err != nil {
		t.Fatalf("the reported port does not answer: %v", err)
	}
	c.Close()
}
