package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/jimlambrt/gldap"
	"github.com/pires/go-proxyproto"

	"github.com/ldapgate/ldapgate/failmode"
)

// The balancer of these tests is 127.0.0.1; 127.0.0.2 is a client that
// reaches the section directly (Linux routes all of 127.0.0.0/8 to lo).
var (
	balancerIP  = net.IPv4(127, 0, 0, 1)
	untrustedIP = net.IPv4(127, 0, 0, 2)
)

// proxiedSection serves a safe section behind a balancer (127.0.0.1/32
// trusted) and returns its address, the bind events and the attempts Duo
// was asked about, and the reasons of the connections refused at accept.
// Duo approves everyone.
func proxiedSection(t *testing.T, headerTimeout time.Duration, perIP int) (string, chan failmode.BindEvent, chan failmode.Attempt, chan string) {
	t.Helper()
	events, attempts := make(chan failmode.BindEvent, 16), make(chan failmode.Attempt, 16)
	refused := make(chan string, 16)
	sf := fakeSF{verify: func(_ context.Context, a failmode.Attempt) (failmode.Verdict, error) {
		attempts <- a
		return failmode.Verdict{Allowed: true}, nil
	}}
	d := sampleDirectory(t, 2*time.Second, lookupPassword(), memoryDirectory(t))
	rec := failmode.RecorderFunc(func(e failmode.BindEvent) { events <- e })
	addr := serveTest(t, Config{
		Policy:              func() failmode.Policy { return failmode.Policy{Mode: failmode.Safe} },
		MaxConnections:      16,
		MaxConnectionsPerIP: perIP,
		OnConnEvent: func(ev gldap.ConnEvent) {
			if ev.Kind == gldap.ConnRefused {
				refused <- ev.Reason
			}
		},
		ProxyProtocol: &ProxyProtocol{
			Trusted:       []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
			HeaderTimeout: headerTimeout,
		},
	}, d, sf, rec)
	return addr, events, attempts, refused
}

// dialFrom opens a TCP connection to addr from the local address ip.
func dialFrom(t *testing.T, ip net.IP, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// v2Header is the PROXY v2 header a balancer sends for a client at src.
func v2Header(t *testing.T, src string, to net.Conn) []byte {
	t.Helper()
	h := proxyproto.HeaderProxyFromAddrs(2, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(src)), to.RemoteAddr())
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ldapOver starts a go-ldap client on c.
func ldapOver(t *testing.T, c net.Conn) *ldap.Conn {
	t.Helper()
	conn := ldap.NewConn(c, false)
	conn.Start()
	conn.SetTimeout(10 * time.Second)
	t.Cleanup(func() { conn.Close() })
	return conn
}

// awaitClosed fails unless the server closes c within limit (a read ends
// with EOF or a reset, not the deadline), and returns how long it took.
func awaitClosed(t *testing.T, c net.Conn, limit time.Duration) time.Duration {
	t.Helper()
	begin := time.Now()
	_ = c.SetReadDeadline(begin.Add(limit))
	_, err := io.Copy(io.Discard, c)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection still open after %s", limit)
	}
	return time.Since(begin)
}

// TestProxyProtocolClientAddress: behind a trusted balancer the client
// address of the v2 header is the client's everywhere: in the bind event
// (auth log, throttles) and in the attempt Duo is asked about (ipaddr).
func TestProxyProtocolClientAddress(t *testing.T) {
	addr, events, attempts, _ := proxiedSection(t, 5*time.Second, 0)
	c := dialFrom(t, balancerIP, addr)
	if _, err := c.Write(v2Header(t, "203.0.113.9:40000", c)); err != nil {
		t.Fatal(err)
	}
	alice := person(t, "alice")
	if err := ldapOver(t, c).Bind(alice.DN(), alice.Password); err != nil {
		t.Fatalf("bind through the balancer: %v", err)
	}
	if a := <-attempts; a.ClientIP != "203.0.113.9" {
		t.Errorf("Duo asked with client IP %q, want 203.0.113.9 (the header's)", a.ClientIP)
	}
	if e := <-events; e.ClientIP != "203.0.113.9" || e.Status != failmode.StatusAllow {
		t.Errorf("event client %q status %s, want 203.0.113.9 Allow", e.ClientIP, e.Status)
	}
}

// TestProxyProtocolV1: a v1 (text) header works as well.
func TestProxyProtocolV1(t *testing.T) {
	addr, events, _, _ := proxiedSection(t, 5*time.Second, 0)
	c := dialFrom(t, balancerIP, addr)
	if _, err := io.WriteString(c, "PROXY TCP4 198.51.100.20 127.0.0.1 51000 389\r\n"); err != nil {
		t.Fatal(err)
	}
	alice := person(t, "alice")
	if err := ldapOver(t, c).Bind(alice.DN(), alice.Password); err != nil {
		t.Fatalf("bind: %v", err)
	}
	if e := <-events; e.ClientIP != "198.51.100.20" {
		t.Errorf("event client %q, want 198.51.100.20", e.ClientIP)
	}
}

// TestProxyProtocolUntrusted: a source that is not trusted cannot claim an
// address: its connection is closed when it sends a header; without one it
// is served with its own address.
func TestProxyProtocolUntrusted(t *testing.T) {
	addr, events, attempts, _ := proxiedSection(t, 5*time.Second, 0)

	c := dialFrom(t, untrustedIP, addr)
	hdr := v2Header(t, "203.0.113.9:40000", c)
	if _, err := c.Write(hdr); err != nil {
		t.Fatal(err)
	}
	awaitClosed(t, c, 5*time.Second)

	direct := dialFrom(t, untrustedIP, addr)
	alice := person(t, "alice")
	if err := ldapOver(t, direct).Bind(alice.DN(), alice.Password); err != nil {
		t.Fatalf("direct bind from an untrusted source without a header: %v", err)
	}
	if a := <-attempts; a.ClientIP != "127.0.0.2" {
		t.Errorf("Duo asked with %q, want the socket's 127.0.0.2", a.ClientIP)
	}
	if e := <-events; e.ClientIP != "127.0.0.2" {
		t.Errorf("event client %q, want 127.0.0.2", e.ClientIP)
	}
	select {
	case e := <-events:
		t.Errorf("an event for the refused connection: %+v", e)
	default:
	}
}

// TestProxyProtocolRequiredFromTrusted: a trusted source must send the
// header: an LDAP request in its place closes the connection at once (not
// after the header timeout), and nothing is decided.
func TestProxyProtocolRequiredFromTrusted(t *testing.T) {
	addr, events, _, refused := proxiedSection(t, time.Minute, 0)
	c := dialFrom(t, balancerIP, addr)
	alice := person(t, "alice")
	if err := ldapOver(t, c).Bind(alice.DN(), alice.Password); err == nil {
		t.Fatal("a bind without a PROXY header from the balancer succeeded")
	}
	awaitClosed(t, c, 10*time.Second)
	if r := <-refused; r != ReasonProxyProtocol {
		t.Errorf("refused for %q, want %q", r, ReasonProxyProtocol)
	}
	select {
	case e := <-events:
		t.Errorf("a bind was decided: %+v", e)
	default:
	}
}

// TestProxyProtocolHeaderTimeout: a header that never completes closes the
// connection after header_timeout, and meanwhile other connections are
// accepted and served (the accept loop does not wait for it).
func TestProxyProtocolHeaderTimeout(t *testing.T) {
	const timeout = 4 * time.Second
	addr, events, _, refused := proxiedSection(t, timeout, 0)
	slow := dialFrom(t, balancerIP, addr)
	begin := time.Now()
	if _, err := slow.Write(v2Header(t, "203.0.113.9:40000", slow)[:10]); err != nil {
		t.Fatal(err)
	}

	c := dialFrom(t, balancerIP, addr)
	if _, err := c.Write(v2Header(t, "203.0.113.10:40000", c)); err != nil {
		t.Fatal(err)
	}
	alice := person(t, "alice")
	if err := ldapOver(t, c).Bind(alice.DN(), alice.Password); err != nil {
		t.Fatalf("bind while another header is pending: %v", err)
	}
	if took := time.Since(begin); took >= timeout {
		t.Fatalf("bind served only after %s, when the pending header had timed out (%s)", took, timeout)
	}
	if e := <-events; e.ClientIP != "203.0.113.10" {
		t.Errorf("event client %q, want 203.0.113.10", e.ClientIP)
	}

	awaitClosed(t, slow, 3*timeout)
	if r := <-refused; r != ReasonProxyProtocol {
		t.Errorf("refused for %q, want %q", r, ReasonProxyProtocol)
	}
	if took := time.Since(begin); took < timeout {
		t.Errorf("incomplete header closed after %s, before header_timeout %s", took, timeout)
	}
}

// TestProxyProtocolPerIPLimit: max_connections_per_ip counts the proxied
// client addresses, not the balancer's.
func TestProxyProtocolPerIPLimit(t *testing.T) {
	addr, _, _, _ := proxiedSection(t, 5*time.Second, 1)
	alice := person(t, "alice")
	for _, src := range []string{"203.0.113.1:1000", "203.0.113.2:1000"} {
		c := dialFrom(t, balancerIP, addr)
		if _, err := c.Write(v2Header(t, src, c)); err != nil {
			t.Fatal(err)
		}
		if err := ldapOver(t, c).Bind(alice.DN(), alice.Password); err != nil {
			t.Fatalf("client %s through the balancer: %v", src, err)
		}
	}
	again := dialFrom(t, balancerIP, addr)
	if _, err := again.Write(v2Header(t, "203.0.113.1:2000", again)); err != nil {
		t.Fatal(err)
	}
	err := ldapOver(t, again).Bind(alice.DN(), alice.Password)
	if err == nil {
		t.Fatal("a second connection of 203.0.113.1 was served with max_connections_per_ip 1")
	}
}

// TestProxyProtocolUnderTLS: the header comes before TLS, on ldaps_listen
// and before a StartTLS alike, and the connection is the header's client's
// from accept on (gldap's connection events).
func TestProxyProtocolUnderTLS(t *testing.T) {
	opened := make(chan string, 4)
	w := serveTLS(t, Config{Listen: "127.0.0.1:0", LDAPSListen: "127.0.0.1:0", MaxConnections: 8,
		ProxyProtocol: &ProxyProtocol{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/30")}, HeaderTimeout: 5 * time.Second},
		OnConnEvent: func(ev gldap.ConnEvent) {
			if ev.Kind == gldap.ConnOpened {
				opened <- ev.RemoteAddr.String()
			}
		}}, tls.VersionTLS12)
	alice := person(t, "alice")

	raw := dialFrom(t, balancerIP, w.ldaps)
	if _, err := raw.Write(v2Header(t, "192.0.2.44:3000", raw)); err != nil {
		t.Fatal(err)
	}
	conn := ldapOver(t, tls.Client(raw, w.client()))
	if err := conn.Bind(alice.DN(), alice.Password); err != nil {
		t.Fatalf("bind over LDAPS behind the balancer: %v", err)
	}
	if got := <-opened; got != "192.0.2.44:3000" {
		t.Errorf("LDAPS connection opened for %s, want 192.0.2.44:3000", got)
	}

	raw = dialFrom(t, balancerIP, w.plain)
	if _, err := raw.Write(v2Header(t, "192.0.2.45:3000", raw)); err != nil {
		t.Fatal(err)
	}
	conn = ldapOver(t, raw)
	if err := conn.StartTLS(w.client()); err != nil {
		t.Fatalf("StartTLS behind the balancer: %v", err)
	}
	if err := conn.Bind(alice.DN(), alice.Password); err != nil {
		t.Fatalf("bind after StartTLS behind the balancer: %v", err)
	}
	if got := <-opened; got != "192.0.2.45:3000" {
		t.Errorf("connection opened for %s, want 192.0.2.45:3000", got)
	}
}

// TestProxyProtocolNeedsRestart: the listener takes proxy_protocol at start,
// so a reload that changes it is told it needs a restart; the same values
// in a new block are no change.
func TestProxyProtocolNeedsRestart(t *testing.T) {
	pp := func(cidr string) *ProxyProtocol {
		return &ProxyProtocol{Trusted: []netip.Prefix{netip.MustParsePrefix(cidr)}, HeaderTimeout: time.Second}
	}
	cases := []struct {
		name string
		a, b *ProxyProtocol
		want bool
	}{
		{"same", pp("10.0.0.0/24"), pp("10.0.0.0/24"), false},
		{"none", nil, nil, false},
		{"turned on", nil, pp("10.0.0.0/24"), true},
		{"turned off", pp("10.0.0.0/24"), nil, true},
		{"other balancers", pp("10.0.0.0/24"), pp("10.0.1.0/24"), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := slices.Contains(ListenerChanges(Config{ProxyProtocol: c.a}, Config{ProxyProtocol: c.b}), "proxy_protocol")
			if got != c.want {
				t.Errorf("proxy_protocol among the changes: %v, want %v", got, c.want)
			}
		})
	}
}
