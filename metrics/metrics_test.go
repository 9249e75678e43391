package metrics_test

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ldapgate/ldapgate/duostate"
	"github.com/ldapgate/ldapgate/failmode"
	"github.com/ldapgate/ldapgate/metrics"
)

// Identities recorded in events: none may appear in any label value.
const (
	userDN   = "uid=alice.secret,ou=people,dc=example,dc=com"
	userName = "alice.secret"
	clientIP = "192.0.2.77"
)

func scrape(t *testing.T, m *metrics.Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse exposition: %v", err)
	}
	return fams
}

// series returns the family's metrics keyed by their labels ("a=x,b=y" in
// label-name order, as the exposition sorts them).
func series(t *testing.T, fams map[string]*dto.MetricFamily, name string) map[string]*dto.Metric {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no family %s", name)
	}
	out := map[string]*dto.Metric{}
	for _, m := range f.GetMetric() {
		var kv []string
		for _, l := range m.GetLabel() {
			kv = append(kv, l.GetName()+"="+l.GetValue())
		}
		out[strings.Join(kv, ",")] = m
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	return -1
}

// wantValues asserts that the family holds exactly want.
func wantValues(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]float64) {
	t.Helper()
	got := series(t, fams, name)
	for k, v := range want {
		m, ok := got[k]
		if !ok {
			t.Errorf("%s{%s}: missing", name, k)
			continue
		}
		if value(m) != v {
			t.Errorf("%s{%s} = %v, want %v", name, k, value(m), v)
		}
	}
	for k, m := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s{%s} = %v: unexpected series", name, k, value(m))
		}
	}
}

func bind(server string, stage failmode.AuthStage, rule string, status failmode.Status, fm bool) failmode.BindEvent {
	return failmode.BindEvent{
		Time: time.Now(), Server: server, ClientIP: clientIP, DN: userDN, Username: userName,
		Stage: stage, Status: status, Rule: failmode.Rule(rule), Failmode: fm, Msg: "bind by " + userDN,
	}
}

func TestMetrics(t *testing.T) {
	m := metrics.New("1.2.3-test")
	var _ failmode.Recorder = m

	sec := failmode.AuthSecondary
	pri := failmode.AuthPrimary
	events := []failmode.BindEvent{
		bind("corp", sec, "second_factor", failmode.StatusAllow, false),
		bind("corp", sec, "second_factor", failmode.StatusAllow, false),
		bind("corp", sec, "denied", failmode.StatusReject, false),
		bind("corp", sec, "failmode_safe", failmode.StatusAllow, true),
		bind("corp", sec, "failmode_safe", failmode.StatusAllow, true),
		bind("corp", sec, "failmode_safe", failmode.StatusAllow, true),
		bind("corp", sec, "secure_group", failmode.StatusError, true),
		bind("vpn", sec, "failmode_secure", failmode.StatusError, true),
		bind("vpn", pri, "invalid_credentials", failmode.StatusReject, false),
		bind("vpn", pri, "directory_unavailable", failmode.StatusError, false),
		bind("vpn", sec, "lookup_failed", failmode.StatusError, false),
		// An unexpected rule never becomes a label value.
		bind("vpn", sec, "uid=bob,dc=example,dc=com", failmode.StatusError, false),
	}
	for _, e := range events {
		m.RecordBind(e)
	}

	m.ObserveDuo("api-x.duosecurity.com/DIXXXX", failmode.StagePreauth, 40*time.Millisecond, failmode.Allowed)
	m.ObserveDuo("api-x.duosecurity.com/DIXXXX", failmode.StagePreauth, 2*time.Second, failmode.Unreachable)
	m.ObserveDuo("api-x.duosecurity.com/DIXXXX", failmode.StageAuth, 12*time.Second, failmode.Denied)
	m.ObserveDuo("api-x.duosecurity.com/DIXXXX", failmode.StageAuth, 61*time.Second, failmode.Degraded)
	m.ObserveDuo("api-x.duosecurity.com/DIXXXX", failmode.StageCheck, 5*time.Millisecond, failmode.Misconfigured)
	m.ObserveDuo("api-x.duosecurity.com/DIXXXX", failmode.StageCheck, 5*time.Millisecond, failmode.Class(42))

	m.SetDuoState("api-x.duosecurity.com/DIXXXX", duostate.OK)
	m.SetDuoState("api-x.duosecurity.com/DIXXXX", duostate.Unreachable)
	m.SetDuoState("api-y.duosecurity.com/DIYYYY", duostate.Degraded)

	m.SetDirectoryUp("corp", true)
	m.SetDirectoryUp("partners", true)
	m.SetDirectoryUp("partners", false)

	m.ConnectionsFunc("corp", func() float64 { return 7 })
	m.ConnectionsFunc("vpn", func() float64 { return 1 })
	m.ConnectionsFunc("vpn", func() float64 { return 3 }) // replaces
	m.ConnectionsFunc("old", func() float64 { return 9 })
	m.ConnectionsFunc("old", nil) // removes

	until := time.Unix(1_900_000_000, 0)
	m.SetPrimaryOnlyUntil("corp", until)
	m.SetPrimaryOnlyUntil("vpn", until)
	m.SetPrimaryOnlyUntil("vpn", time.Time{})

	var delivered, dropped uint64 = 5, 2
	m.AlertsFunc(func() uint64 { return delivered }, func() uint64 { return dropped }, nil)
	m.AlertsFunc(nil, nil, nil) // ignored

	fams := scrape(t, m)

	wantValues(t, fams, "ldapgate_binds_total", map[string]float64{
		"outcome=second_factor,server=corp":        2,
		"outcome=denied,server=corp":               1,
		"outcome=failmode_safe,server=corp":        3,
		"outcome=secure_group,server=corp":         1,
		"outcome=failmode_secure,server=vpn":       1,
		"outcome=invalid_credentials,server=vpn":   1,
		"outcome=directory_unavailable,server=vpn": 1,
		"outcome=lookup_failed,server=vpn":         1,
		"outcome=other,server=vpn":                 1,
	})
	wantValues(t, fams, "ldapgate_failmode_decisions_total", map[string]float64{
		"decision=allow,failmode=safe,server=corp": 3,
		"decision=deny,failmode=safe,server=corp":  1,
		"decision=deny,failmode=secure,server=vpn": 1,
	})
	wantValues(t, fams, "ldapgate_duo_errors_total", map[string]float64{
		"class=unreachable":   1,
		"class=degraded":      1,
		"class=misconfigured": 1,
		"class=unknown":       1,
	})
	wantValues(t, fams, "ldapgate_duo_state", map[string]float64{
		"integration=api-x.duosecurity.com/DIXXXX,state=ok":            0,
		"integration=api-x.duosecurity.com/DIXXXX,state=degraded":      0,
		"integration=api-x.duosecurity.com/DIXXXX,state=unreachable":   1,
		"integration=api-x.duosecurity.com/DIXXXX,state=misconfigured": 0,
		"integration=api-y.duosecurity.com/DIYYYY,state=ok":            0,
		"integration=api-y.duosecurity.com/DIYYYY,state=degraded":      1,
		"integration=api-y.duosecurity.com/DIYYYY,state=unreachable":   0,
		"integration=api-y.duosecurity.com/DIYYYY,state=misconfigured": 0,
	})
	wantValues(t, fams, "ldapgate_directory_up", map[string]float64{
		"directory=corp":     1,
		"directory=partners": 0,
	})
	wantValues(t, fams, "ldapgate_connections", map[string]float64{
		"server=corp": 7,
		"server=vpn":  3,
	})
	wantValues(t, fams, "ldapgate_primary_only_until_seconds", map[string]float64{
		"server=corp": 1_900_000_000,
		"server=vpn":  0,
	})
	wantValues(t, fams, "ldapgate_build_info", map[string]float64{
		"goversion=" + runtime.Version() + ",version=1.2.3-test": 1,
	})
	wantValues(t, fams, "ldapgate_alerts_delivered_total", map[string]float64{"": 5})
	wantValues(t, fams, "ldapgate_alerts_dropped_total", map[string]float64{"": 2})
	if _, ok := fams["ldapgate_alerts_failed_total"]; ok {
		t.Error("a nil func must leave its counter out")
	}

	// The histogram: counts per endpoint, and the bucket bounds cover 10ms..60s.
	h := series(t, fams, "ldapgate_duo_request_duration_seconds")
	for ep, want := range map[string]uint64{"preauth": 2, "auth": 2, "check": 2} {
		m, ok := h["endpoint="+ep]
		if !ok {
			t.Fatalf("no histogram for %s", ep)
		}
		if got := m.GetHistogram().GetSampleCount(); got != want {
			t.Errorf("histogram %s count %d, want %d", ep, got, want)
		}
	}
	if got := h["endpoint=preauth"].GetHistogram().GetSampleSum(); got != 2.04 {
		t.Errorf("preauth sum %v, want 2.04", got)
	}
	// The text format lists +Inf last; the bound before it is 60s, and the
	// 61s auth call is above every finite bound.
	b := h["endpoint=auth"].GetHistogram().GetBucket()
	if first, last := b[0].GetUpperBound(), b[len(b)-2].GetUpperBound(); first != 0.01 || last != 60 {
		t.Errorf("buckets %v..%v, want 0.01..60", first, last)
	}
	if got := b[len(b)-2].GetCumulativeCount(); got != 1 {
		t.Errorf("auth calls <= 60s: %d, want 1", got)
	}
	if len(h) != 3 {
		t.Errorf("histogram series %v, want preauth, auth, check", h)
	}

	// The Go and process collectors are there.
	for _, name := range []string{"go_goroutines", "process_start_time_seconds"} {
		if _, ok := fams[name]; !ok && (name != "process_start_time_seconds" || runtime.GOOS == "linux") {
			t.Errorf("no %s", name)
		}
	}

	// No label value anywhere carries an identity from the events.
	for name, f := range fams {
		for _, mm := range f.GetMetric() {
			for _, l := range mm.GetLabel() {
				for _, secret := range []string{userDN, userName, "uid=", clientIP, "bob"} {
					if strings.Contains(l.GetValue(), secret) {
						t.Errorf("%s label %s=%q carries %q", name, l.GetName(), l.GetValue(), secret)
					}
				}
			}
		}
	}
}

func TestEndpointLabelIsBounded(t *testing.T) {
	m := metrics.New("t")
	m.ObserveDuo("i", failmode.Stage(42), time.Millisecond, failmode.Allowed) // no stage the label names
	fams := scrape(t, m)
	h := series(t, fams, "ldapgate_duo_request_duration_seconds")
	if _, ok := h["endpoint=other"]; !ok || len(h) != 1 {
		t.Fatalf("series %v, want only endpoint=other", h)
	}
	if _, ok := fams["ldapgate_duo_errors_total"]; ok {
		t.Fatal("an allowed call is not an error")
	}
}

func TestOutcomeAndFailmodeDecision(t *testing.T) {
	for _, tt := range []struct {
		name                    string
		rule                    failmode.Rule
		status                  failmode.Status
		outcome, mode, decision string
	}{
		{"safe allows", "failmode_safe", failmode.StatusAllow, "failmode_safe", "safe", "allow"},
		{"secure denies", "failmode_secure", failmode.StatusError, "failmode_secure", "secure", "deny"},
		{"secure group in safe section", "secure_group", failmode.StatusError, "secure_group", "safe", "deny"},
		{"unknown rule allowed", "mystery", failmode.StatusAllow, "other", "unknown", "allow"},
		{"unknown rule denied", "", failmode.StatusError, "other", "unknown", "deny"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := metrics.Outcome(tt.rule); got != tt.outcome {
				t.Errorf("Outcome(%q) = %q, want %q", tt.rule, got, tt.outcome)
			}
			mode, dec := metrics.FailmodeDecision(failmode.BindEvent{Rule: tt.rule, Status: tt.status, Failmode: true})
			if mode != tt.mode || dec != tt.decision {
				t.Errorf("FailmodeDecision = %s/%s, want %s/%s", mode, dec, tt.mode, tt.decision)
			}
		})
	}
	for _, r := range append(failmode.Rules(), failmode.PrimaryRules()...) {
		if metrics.Outcome(r) != string(r) {
			t.Errorf("Outcome(%q) must be itself", r)
		}
	}
}

func TestRecordBindConcurrent(t *testing.T) {
	m := metrics.New("t")
	done := make(chan struct{})
	for range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 1000 {
				m.RecordBind(bind("corp", failmode.AuthSecondary, "failmode_safe", failmode.StatusAllow, true))
			}
		}()
	}
	for range 4 {
		<-done
	}
	fams := scrape(t, m)
	wantValues(t, fams, "ldapgate_failmode_decisions_total", map[string]float64{"decision=allow,failmode=safe,server=corp": 4000})
}
