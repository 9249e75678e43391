package metrics_test

import (
	"testing"

	"github.com/ldapgate/ldapgate/metrics"
)

func TestAuthSyslogFunc(t *testing.T) {
	m := metrics.New("test")
	if _, ok := scrape(t, m)["ldapgate_auth_syslog_sent_total"]; ok {
		t.Fatal("auth syslog counters before AuthSyslogFunc")
	}
	var sent, dropped uint64 = 7, 3
	up := true
	m.AuthSyslogFunc(func() uint64 { return sent }, func() uint64 { return dropped }, func() bool { return up })
	m.AuthSyslogFunc(func() uint64 { return 0 }, func() uint64 { return 0 }, func() bool { return false }) // ignored
	fams := scrape(t, m)
	for name, want := range map[string]float64{"ldapgate_auth_syslog_sent_total": 7, "ldapgate_auth_syslog_dropped_total": 3, "ldapgate_auth_syslog_connected": 1} {
		f, ok := fams[name]
		if !ok || len(f.Metric) != 1 {
			t.Fatalf("%s: %v", name, f)
		}
		var got float64
		if c := f.Metric[0].GetCounter(); c != nil {
			got = c.GetValue()
		} else {
			got = f.Metric[0].GetGauge().GetValue()
		}
		if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	up = false
	if g := scrape(t, m)["ldapgate_auth_syslog_connected"].Metric[0].GetGauge().GetValue(); g != 0 {
		t.Errorf("connected %v after the connection went", g)
	}
}
