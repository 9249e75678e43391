package integration

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ldapgate/ldapgate/internal/testutil"
)

// Issue 8: what one client can make ldapgate hold through its connections.
// Each test drives ldapgate over loopback and reads the result from its
// /metrics.

// metricValue scrapes /metrics and returns the value of the first series
// of name whose labels include labels, and whether there is one.
func (e *env) metricValue(name string, labels map[string]string) (float64, bool) {
	e.t.Helper()
	resp, err := http.Get("http://" + e.health + "/metrics")
	if err != nil {
		e.t.Fatalf("scraping /metrics: %v", err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		e.t.Fatalf("parsing /metrics: %v", err)
	}
	mf, ok := families[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range mf.Metric {
		have := map[string]string{}
		for _, lp := range m.Label {
			have[lp.GetName()] = lp.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		}
	}
	return 0, false
}

// mustMetric is metricValue for a series that must exist.
func (e *env) mustMetric(name string, labels map[string]string) float64 {
	e.t.Helper()
	v, ok := e.metricValue(name, labels)
	if !ok {
		e.t.Fatalf("no series %s%v in /metrics", name, labels)
	}
	return v
}

// dialFrom opens a raw TCP connection to a section from the local address
// from (127.0.0.1, 127.0.0.2, ...: all of 127/8 is loopback).
func (e *env) dialFrom(sectionName, from string) net.Conn {
	e.t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", e.addr[sectionName])
	if err != nil {
		e.t.Fatalf("dial %s from %s: %v", sectionName, from, err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// served sends an unauthenticated search on c and reports whether the
// section answered it (served) or sent a Notice of Disconnection (refused);
// the notice's result code is returned.
func served(t *testing.T, c net.Conn, messageID int64) (bool, int64) {
	t.Helper()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(rawSearch(t, messageID, "dc=example,dc=com").Bytes()); err != nil {
		t.Fatalf("sending a search: %v", err)
	}
	p, err := ber.ReadPacket(c)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	if len(p.Children) < 2 || len(p.Children[1].Children) < 1 {
		t.Fatalf("not an LDAP response: %s", diagnostic(p))
	}
	id, _ := p.Children[0].Value.(int64)
	code, _ := ber.ParseInt64(p.Children[1].Children[0].Data.Bytes())
	if id == 0 && p.Children[1].Tag == ldap.ApplicationExtendedResponse {
		return false, code
	}
	if id != messageID {
		t.Fatalf("answer to message %d, want %d: %s", id, messageID, diagnostic(p))
	}
	return true, code
}

// waitIdleConnections waits until the section counts no connection: the
// harness's own "is it listening?" probes are counted until ldapgate sees
// them close.
func (e *env) waitConnections(sectionName string, want float64) {
	e.t.Helper()
	testutil.WaitFor(e.t, 10*time.Second, func() bool {
		v, _ := e.metricValue("ldapgate_connections", map[string]string{"server": sectionName})
		return v == want
	}, fmt.Sprintf("ldapgate_connections{server=%q} to be %v", sectionName, want))
}

// TestPipeliningWithoutReading: one connection sends 50 MB of small
// searches and never reads the answers. ldapgate must hold no more than
// max_pending_requests handlers for it (not a goroutine per request) and,
// once its answers stop being read, disconnect it after write_timeout.
func TestPipeliningWithoutReading(t *testing.T) {
	const (
		total = 50 << 20
		// the guard: far below what the unpatched proxy reaches (a
		// goroutine per request: 845,000 for 61 MB), and below the race
		// detector's 8,128-goroutine limit, which kills the binary
		maxExtraGoroutines = 300
	)
	e := start(t, []section{{Name: "pipe", Failmode: "secure", Extra: map[string]any{
		"write_timeout":        "1s",
		"max_pending_requests": 32,
	}}})
	e.waitConnections("pipe", 0)
	// In this process go_goroutines counts the whole test binary: this test
	// must not run in parallel with another.
	baseline := e.mustMetric("go_goroutines", nil)
	rssBefore := e.mustMetric("process_resident_memory_bytes", nil)

	// 1,000 searches a write, about 40 KB
	var batch []byte
	for i := int64(1); i <= 1000; i++ {
		batch = append(batch, rawSearch(t, i, "dc=example,dc=com").Bytes()...)
	}
	c := e.dialFrom("pipe", "127.0.0.1")
	var sent atomic.Int64
	var stop atomic.Bool
	sendErr := make(chan error, 1)
	go func() {
		for sent.Load() < total && !stop.Load() {
			// Long: under load the section may stop reading for a while
			// (requests waiting on the directory); the client must go on
			// sending until ldapgate cuts it, not give up first.
			_ = c.SetWriteDeadline(time.Now().Add(30 * time.Second))
			n, err := c.Write(batch)
			sent.Add(int64(n))
			if err != nil {
				sendErr <- err
				return
			}
		}
		sendErr <- nil
	}()
	defer stop.Store(true)

	var peak, rssPeak float64
	var err error
	deadline := time.Now().Add(60 * time.Second)
watch:
	for {
		select {
		case err = <-sendErr:
			break watch
		case <-e.exited:
			t.Fatalf("ldapgate died after %d MB of pipelined searches:\n%s", sent.Load()>>20, tail(e.stderr.String(), 20))
		case <-time.After(100 * time.Millisecond):
		}
		g := e.mustMetric("go_goroutines", nil)
		peak = max(peak, g)
		rssPeak = max(rssPeak, e.mustMetric("process_resident_memory_bytes", nil))
		if g > baseline+maxExtraGoroutines {
			stop.Store(true)
			t.Fatalf("goroutines went from %v to %v after %d MB of pipelined searches", baseline, g, sent.Load()>>20)
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60s the client had sent %d MB and was still connected", sent.Load()>>20)
		}
	}
	t.Logf("goroutines: baseline %v, peak %v; RSS %.0f MB -> peak %.0f MB; %d MB sent before the end (%v)",
		baseline, peak, rssBefore/(1<<20), rssPeak/(1<<20), sent.Load()>>20, err)
	if err == nil {
		// everything was sent: the connection must still end
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, rerr := io.Copy(io.Discard, c)
		var ne net.Error
		if errors.As(rerr, &ne) && ne.Timeout() {
			t.Fatal("the client that never reads was not disconnected")
		}
	}
	testutil.WaitFor(t, 10*time.Second, func() bool {
		v, _ := e.metricValue("ldapgate_connections_dropped_total", map[string]string{"server": "pipe", "reason": "write_timeout"})
		return v >= 1
	}, "ldapgate_connections_dropped_total{reason=write_timeout} to count the drop")
	e.waitConnections("pipe", 0)
	// and the section still serves
	ok, _ := served(t, e.dialFrom("pipe", "127.0.0.1"), 1)
	if !ok {
		t.Fatal("the section no longer serves")
	}
}

// TestMaxConnectionsPerIP: beyond max_connections_per_ip, connections from
// one address are refused with a busy notice; another address is served.
func TestMaxConnectionsPerIP(t *testing.T) {
	const perIP = 3
	e := start(t, []section{{Name: "perip", Failmode: "secure", Extra: map[string]any{"max_connections_per_ip": perIP}}})
	e.waitConnections("perip", 0)
	for i := range perIP {
		if ok, code := served(t, e.dialFrom("perip", "127.0.0.1"), 1); !ok {
			t.Fatalf("connection %d of %d from one address refused (code %d)", i+1, perIP, code)
		}
	}
	excess := e.dialFrom("perip", "127.0.0.1")
	ok, code := served(t, excess, 1)
	if ok || code != ldap.LDAPResultBusy {
		t.Fatalf("connection %d from one address: served %v, code %d; want a busy notice", perIP+1, ok, code)
	}
	_ = excess.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := excess.Read(make([]byte, 1)); err == nil {
		t.Fatal("the refused connection stayed open")
	}
	for i := range perIP {
		if ok, code := served(t, e.dialFrom("perip", "127.0.0.2"), 1); !ok {
			t.Fatalf("connection %d from another address refused (code %d)", i+1, code)
		}
	}
	if v := e.mustMetric("ldapgate_connections_refused_total", map[string]string{"server": "perip", "reason": "per_ip"}); v != 1 {
		t.Errorf("ldapgate_connections_refused_total{reason=per_ip} = %v, want 1", v)
	}
	if v := e.mustMetric("ldapgate_connections", map[string]string{"server": "perip"}); v != 2*perIP {
		t.Errorf("ldapgate_connections = %v, want %d", v, 2*perIP)
	}
}

// TestIdleConnectionsAreCounted: ldapgate_connections counts TCP
// connections from accept to close, including ones that never send a byte.
func TestIdleConnectionsAreCounted(t *testing.T) {
	const n = 20
	e := start(t, []section{{Name: "idle", Failmode: "secure"}})
	e.waitConnections("idle", 0)
	conns := make([]net.Conn, 0, n)
	for range n {
		conns = append(conns, e.dialFrom("idle", "127.0.0.1"))
	}
	e.waitConnections("idle", n)
	for _, c := range conns {
		c.Close()
	}
	e.waitConnections("idle", 0)
}

// TestSlowRequestIsCutOff: a request that has begun must arrive within
// request_timeout (slowloris); the client gets a notice and is dropped.
func TestSlowRequestIsCutOff(t *testing.T) {
	e := startParallel(t, []section{{Name: "slow", Failmode: "secure", Extra: map[string]any{"request_timeout": "1s"}}})
	c := e.dialFrom("slow", "127.0.0.1")
	req := rawSearch(t, 1, "dc=example,dc=com").Bytes()
	begun := time.Now()
	if _, err := c.Write(req[:5]); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	p, err := ber.ReadPacket(c)
	if err != nil {
		t.Fatalf("no notice of disconnection within 10s: %v", err)
	}
	if id, _ := p.Children[0].Value.(int64); id != 0 || diagnostic(p) != "request not received in time" {
		t.Fatalf("want a notice of disconnection, got message %d: %q", id, diagnostic(p))
	}
	if took := time.Since(begun); took < time.Second || took > 5*time.Second {
		t.Errorf("cut off after %v, want request_timeout (1s)", took)
	}
	testutil.WaitFor(t, 5*time.Second, func() bool {
		v, _ := e.metricValue("ldapgate_connections_dropped_total", map[string]string{"server": "slow", "reason": "request_timeout"})
		return v == 1
	}, "ldapgate_connections_dropped_total{reason=request_timeout} to be 1")
}

// diagnostic is the diagnosticMessage of a response PDU ("" if it has none).
func diagnostic(p *ber.Packet) string {
	if len(p.Children) < 2 || len(p.Children[1].Children) < 3 {
		return ""
	}
	return p.Children[1].Children[2].Data.String()
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
