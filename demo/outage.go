package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/ldapgate/ldapgate/duosim"
)

// Outage is a state `ldapgate demo outage NAME` puts the Duo simulator in.
type Outage struct {
	Name  string
	Fault duosim.Fault
	// Effect says what the next binds do, in the README's failmode words.
	Effect string
}

// Outages are the states the tour uses, in the order the help lists them.
var Outages = []Outage{
	{"on", duosim.FaultRefuse, "Duo is unreachable (connections refused). wiki (failmode safe) lets users in on their password alone, except admins (secure_groups); vpn (failmode secure) lets nobody in."},
	{"off", duosim.FaultNone, "Duo is fine again: every bind needs a second factor."},
	{"degrade", duosim.FaultAuthError, "Duo answers preauth, then fails the push or passcode step (HTTP 503): degraded. Binds are denied in both sections; failmode is not consulted. Bypass users (erin) still pass at preauth."},
	{"misconfigure", duosim.FaultUnauthorized, "Duo rejects the integration's keys (HTTP 401), as with a wrong secret key: misconfigured. Every bind is denied, in every section."},
	{"hang", duosim.FaultHang, "Duo accepts connections and never answers: preauth gives up after duo.timeout (3s) and counts as unreachable, so binds behave as with `on`, each after a 3s wait."},
}

// LookupOutage returns the outage called name.
func LookupOutage(name string) (Outage, bool) {
	for _, o := range Outages {
		if o.Name == strings.ToLower(strings.TrimSpace(name)) {
			return o, true
		}
	}
	return Outage{}, false
}

// OutageNames lists the outage names, for help and errors.
func OutageNames() []string {
	names := make([]string, len(Outages))
	for i, o := range Outages {
		names[i] = o.Name
	}
	return names
}

// SetOutage puts the running demo's simulator in outage o through its
// control API.
func SetOutage(ctx context.Context, opts Options, o Outage) error {
	opts = opts.withDefaults()
	url := "http://" + opts.addr(opts.Ports().DuoControl) + "/fault"
	fault := string(o.Fault)
	if fault == "" {
		fault = "none"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, strings.NewReader(fault))
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("the demo's Duo simulator does not answer at %s (is `ldapgate demo` running with the same --base-port?): %w", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("simulator control: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// CurrentOutage asks the simulator which outage it is in; "" when its fault
// is none of Outages.
func CurrentOutage(ctx context.Context, opts Options) (Outage, duosim.Fault, error) {
	opts = opts.withDefaults()
	url := "http://" + opts.addr(opts.Ports().DuoControl) + "/fault"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Outage{}, "", err
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return Outage{}, "", fmt.Errorf("the demo's Duo simulator does not answer at %s: %w", url, err)
	}
	defer resp.Body.Close()
	var st struct {
		Fault duosim.Fault `json:"fault"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&st); err != nil {
		return Outage{}, "", fmt.Errorf("simulator control: %w", err)
	}
	for _, o := range Outages {
		if o.Fault == st.Fault {
			return o, st.Fault, nil
		}
	}
	return Outage{}, st.Fault, nil
}

// WaitDuoSeen waits until the demo's ldapgate reports ready (/readyz 200)
// twice, a probe interval and a bit apart, so that a probe still in flight
// when Duo came back cannot flip it again right after; at most d. Binds
// decided from ldapgate's view of Duo then ask Duo again.
func WaitDuoSeen(ctx context.Context, opts Options, d time.Duration) error {
	opts = opts.withDefaults()
	url := "http://" + opts.addr(opts.Ports().Health) + "/readyz"
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	const probeInterval = time.Second // demo.yaml's duo.probe_interval
	for ready := 0; ready < 2; {
		if err := waitReady(ctx, url, d, nil); err != nil {
			return err
		}
		ready++
		if ready < 2 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(probeInterval + probeInterval/5):
			}
		}
	}
	return nil
}
