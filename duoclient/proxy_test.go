package duoclient_test

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ldapgate/ldapgate/duoclient"
	"github.com/ldapgate/ldapgate/duosim"
	"github.com/ldapgate/ldapgate/failmode"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

// connectProxy is a minimal HTTPS (CONNECT) proxy on loopback: it tunnels
// when refuse is 0, else answers CONNECT with that status.
type connectProxy struct {
	refuse  int
	tunnels atomic.Int64
}

func (p *connectProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
		return
	}
	if p.refuse != 0 {
		w.WriteHeader(p.refuse)
		return
	}
	upstream, err := net.DialTimeout("tcp", r.Host, 2*time.Second)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer upstream.Close()
	w.WriteHeader(http.StatusOK)
	client, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer client.Close()
	p.tunnels.Add(1)
	go func() { _, _ = io.Copy(upstream, buf); upstream.Close() }()
	_, _ = io.Copy(client, upstream)
}

func startProxy(t *testing.T, refuse int) (*connectProxy, *url.URL) {
	t.Helper()
	p := &connectProxy{refuse: refuse}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return p, &url.URL{Scheme: "http", User: url.UserPassword("proxyuser", "proxy-secret"), Host: ln.Addr().String()}
}

func simClient(t *testing.T, sim *duosim.Sim, proxy *url.URL) *duoclient.Client {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(sim.CAPEM())
	c, err := duoclient.New(duoclient.Config{
		APIHost: sim.APIHost(), IntegrationKey: sim.IntegrationKey(), SecretKey: sim.SecretKey(),
		RootCAs: pool, Timeout: 2 * time.Second, PushTimeout: 2 * time.Second,
		Proxy: func(*http.Request) (*url.URL, error) { return proxy, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestHTTPSProxy: calls go through the configured HTTPS proxy; a proxy
// that refuses the CONNECT is our misconfiguration and says so (never an
// outage that could open a safe section), without its password; a proxy
// nobody answers at is the path to Duo being down.
func TestHTTPSProxy(t *testing.T) {
	sim, err := duosim.New(duosim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	ctx := context.Background()

	good, goodURL := startProxy(t, 0)
	if err := simClient(t, sim, goodURL).Check(ctx); err != nil {
		t.Fatalf("check through a working proxy: %v", err)
	}
	if good.tunnels.Load() == 0 {
		t.Fatal("the check did not go through the proxy")
	}

	_, refusing := startProxy(t, http.StatusProxyAuthRequired)
	err = simClient(t, sim, refusing).Check(ctx)
	var fe *failmode.Error
	if !errors.As(err, &fe) || fe.Class != failmode.Misconfigured {
		t.Fatalf("a refusing proxy: %v, want Misconfigured", err)
	}
	if !strings.Contains(err.Error(), "refused CONNECT: 407 Proxy Authentication Required") {
		t.Errorf("the error does not say the proxy refused: %v", err)
	}
	if strings.Contains(err.Error(), "proxy-secret") {
		t.Errorf("the error shows the proxy's password: %v", err)
	}

	dead := &url.URL{Scheme: "http", Host: testutil.FreeAddr(t)}
	err = simClient(t, sim, dead).Check(ctx)
	if !errors.As(err, &fe) || fe.Class != failmode.Unreachable || !strings.Contains(fe.Detail, "HTTPS proxy unreachable") {
		t.Fatalf("a dead proxy: %v, want Unreachable naming the proxy", err)
	}
}
