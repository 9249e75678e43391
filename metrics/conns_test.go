package metrics_test

import (
	"sync"
	"testing"

	"github.com/ldapgate/ldapgate/metrics"
)

// TestConns: the connection counters feed ldapgate_connections (through
// ConnectionsFunc) and the refused and dropped counters, whose reasons are
// a fixed set.
func TestConns(t *testing.T) {
	m := metrics.New("t")
	corp := m.Conns("corp")
	if m.Conns("corp") != corp {
		t.Fatal("Conns must return the same counters for a section")
	}
	m.ConnectionsFunc("corp", corp.Open)
	vpn := m.Conns("vpn")
	m.ConnectionsFunc("vpn", vpn.Open)

	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			corp.Opened()
		}()
	}
	wg.Wait()
	for _, reason := range []string{"", "stopping", "idle", "write_timeout", "request_timeout", "buffer_budget", "protocol_error", "mystery"} {
		corp.Closed(reason)
	}
	corp.Refused("max_connections")
	corp.Refused("per_ip")
	corp.Refused("per_ip")
	corp.Refused("proxy_protocol")
	corp.Refused("uid=alice,dc=example,dc=com") // never a label value
	vpn.Opened()

	fams := scrape(t, m)
	wantValues(t, fams, "ldapgate_connections", map[string]float64{
		"server=corp": 42, // opened 50, closed 8 (every reason counts a close)
		"server=vpn":  1,
	})
	wantValues(t, fams, "ldapgate_connections_refused_total", map[string]float64{
		"reason=max_connections,server=corp": 1,
		"reason=per_ip,server=corp":          2,
		"reason=proxy_protocol,server=corp":  1,
		"reason=other,server=corp":           1,
		"reason=max_connections,server=vpn":  0,
		"reason=per_ip,server=vpn":           0,
		"reason=proxy_protocol,server=vpn":   0,
	})
	wantValues(t, fams, "ldapgate_connections_dropped_total", map[string]float64{
		"reason=idle,server=corp":            1,
		"reason=write_timeout,server=corp":   1,
		"reason=request_timeout,server=corp": 1,
		"reason=buffer_budget,server=corp":   1,
		"reason=protocol_error,server=corp":  1,
		"reason=internal_error,server=corp":  0,
		"reason=other,server=corp":           1,
		"reason=idle,server=vpn":             0,
		"reason=write_timeout,server=vpn":    0,
		"reason=request_timeout,server=vpn":  0,
		"reason=buffer_budget,server=vpn":    0,
		"reason=protocol_error,server=vpn":   0,
		"reason=internal_error,server=vpn":   0,
	})
}
