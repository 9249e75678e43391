package duoclient

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/ldapgate/ldapgate/failmode"
)

func TestVerifyVerdicts(t *testing.T) {
	preauthAuth := okJSON(map[string]any{"result": "auth", "status_msg": "Account is active"})
	authAllow := okJSON(map[string]any{"result": "allow", "status": "allow", "status_msg": "Success. Logging you in..."})
	authDeny := okJSON(map[string]any{"result": "deny", "status": "deny", "status_msg": "Login request denied."})
	authFraud := okJSON(map[string]any{"result": "deny", "status": "fraud", "status_msg": "Login request reported as fraudulent."})

	tests := []struct {
		name    string
		preauth http.HandlerFunc
		auth    http.HandlerFunc
		attempt failmode.Attempt
		want    failmode.Verdict
		// wantAuth is the auth request's expected parameters; nil means no
		// auth request may be sent. An empty value means "absent".
		wantAuth  map[string]string
		wantPre   map[string]string
		wantClass []failmode.Class // observed, in order
	}{
		{
			name:      "preauth allow is a bypass",
			preauth:   okJSON(map[string]any{"result": "allow", "status_msg": "Allowing unknown user"}),
			attempt:   failmode.Attempt{Username: "svc", ClientIP: "192.0.2.1"},
			want:      failmode.Verdict{Allowed: true, Bypass: true, Message: "Allowing unknown user"},
			wantPre:   map[string]string{"username": "svc", "ipaddr": "192.0.2.1"},
			wantClass: []failmode.Class{failmode.Allowed},
		},
		{
			name:      "preauth deny",
			preauth:   okJSON(map[string]any{"result": "deny", "status_msg": "Your account is disabled."}),
			attempt:   failmode.Attempt{Username: "bob"},
			want:      failmode.Verdict{Message: "Your account is disabled."},
			wantPre:   map[string]string{"username": "bob", "ipaddr": ""},
			wantClass: []failmode.Class{failmode.Denied},
		},
		{
			name:      "preauth enroll",
			preauth:   okJSON(map[string]any{"result": "enroll", "status_msg": "Enroll an authentication device to proceed", "enroll_portal_url": "https://x"}),
			attempt:   failmode.Attempt{Username: "new"},
			want:      failmode.Verdict{Message: "not enrolled: Enroll an authentication device to proceed"},
			wantClass: []failmode.Class{failmode.Denied},
		},
		{
			name:      "push allowed",
			preauth:   preauthAuth,
			auth:      authAllow,
			attempt:   failmode.Attempt{Username: "alice", ClientIP: "198.51.100.7", Factor: failmode.FactorPush},
			want:      failmode.Verdict{Allowed: true, Message: "Success. Logging you in..."},
			wantPre:   map[string]string{"username": "alice", "ipaddr": "198.51.100.7"},
			wantAuth:  map[string]string{"username": "alice", "factor": "push", "device": "auto", "ipaddr": "198.51.100.7", "passcode": "", "async": ""},
			wantClass: []failmode.Class{failmode.Allowed, failmode.Allowed},
		},
		{
			name:      "push denied",
			preauth:   preauthAuth,
			auth:      authDeny,
			attempt:   failmode.Attempt{Username: "alice", Factor: failmode.FactorPush},
			want:      failmode.Verdict{Message: "Login request denied."},
			wantAuth:  map[string]string{"factor": "push", "device": "auto"},
			wantClass: []failmode.Class{failmode.Allowed, failmode.Denied},
		},
		{
			name:      "fraud is a denial",
			preauth:   preauthAuth,
			auth:      authFraud,
			attempt:   failmode.Attempt{Username: "alice"},
			want:      failmode.Verdict{Message: "Login request reported as fraudulent.", Fraud: true},
			wantAuth:  map[string]string{"factor": "auto", "device": "auto"},
			wantClass: []failmode.Class{failmode.Allowed, failmode.Denied},
		},
		{
			name:      "passcode sends factor=passcode and the code",
			preauth:   preauthAuth,
			auth:      authAllow,
			attempt:   failmode.Attempt{Username: "alice", ClientIP: "2001:db8::1", Factor: failmode.FactorPasscode, Passcode: "123456"},
			want:      failmode.Verdict{Allowed: true, Message: "Success. Logging you in..."},
			wantAuth:  map[string]string{"factor": "passcode", "passcode": "123456", "device": "", "ipaddr": "2001:db8::1"},
			wantClass: []failmode.Class{failmode.Allowed, failmode.Allowed},
		},
		{
			name:     "a typed passcode wins over the default factor",
			preauth:  preauthAuth,
			auth:     authDeny,
			attempt:  failmode.Attempt{Username: "alice", Factor: failmode.FactorPush, Passcode: "999999"},
			want:     failmode.Verdict{Message: "Login request denied."},
			wantAuth: map[string]string{"factor": "passcode", "passcode": "999999", "device": ""},
		},
		{
			name:     "phone",
			preauth:  preauthAuth,
			auth:     authAllow,
			attempt:  failmode.Attempt{Username: "alice", Factor: failmode.FactorPhone},
			want:     failmode.Verdict{Allowed: true, Message: "Success. Logging you in..."},
			wantAuth: map[string]string{"factor": "phone", "device": "auto"},
		},
		{
			name:     "empty factor is auto",
			preauth:  preauthAuth,
			auth:     authAllow,
			attempt:  failmode.Attempt{Username: "alice"},
			want:     failmode.Verdict{Allowed: true, Message: "Success. Logging you in..."},
			wantAuth: map[string]string{"factor": "auto", "device": "auto"},
		},
		{
			name:     "client ip with port",
			preauth:  preauthAuth,
			auth:     authAllow,
			attempt:  failmode.Attempt{Username: "alice", ClientIP: "[::ffff:192.0.2.9]:40000"},
			want:     failmode.Verdict{Allowed: true, Message: "Success. Logging you in..."},
			wantPre:  map[string]string{"ipaddr": "192.0.2.9"},
			wantAuth: map[string]string{"ipaddr": "192.0.2.9"},
		},
		{
			name:     "client ip that is not an address is not sent",
			preauth:  preauthAuth,
			auth:     authAllow,
			attempt:  failmode.Attempt{Username: "alice", ClientIP: "@pipe"},
			want:     failmode.Verdict{Allowed: true, Message: "Success. Logging you in..."},
			wantPre:  map[string]string{"ipaddr": ""},
			wantAuth: map[string]string{"ipaddr": ""},
		},
		{
			name:     "usernames with spaces and unicode are signed correctly",
			preauth:  preauthAuth,
			auth:     authAllow,
			attempt:  failmode.Attempt{Username: "Jörg Müller+x@EXAMPLE.org"},
			want:     failmode.Verdict{Allowed: true, Message: "Success. Logging you in..."},
			wantPre:  map[string]string{"username": "Jörg Müller+x@EXAMPLE.org"},
			wantAuth: map[string]string{"username": "Jörg Müller+x@EXAMPLE.org"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeDuo(t)
			f.set("/auth/v2/preauth", tt.preauth)
			if tt.auth != nil {
				f.set("/auth/v2/auth", tt.auth)
			}
			c, obs := newClient(t, f.host())
			got, err := c.Verify(context.Background(), tt.attempt)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got != tt.want {
				t.Fatalf("verdict %+v, want %+v", got, tt.want)
			}
			for _, r := range f.requests("") {
				if !r.SignatureOK {
					t.Errorf("%s %s: signature did not verify", r.Method, r.Path)
				}
				if r.Method != http.MethodPost {
					t.Errorf("%s %s: want POST", r.Method, r.Path)
				}
				if !strings.HasPrefix(r.UserAgent, "ldapgate/test duo_api_golang/") {
					t.Errorf("user agent %q", r.UserAgent)
				}
			}
			pre := f.requests("/auth/v2/preauth")
			if len(pre) != 1 {
				t.Fatalf("%d preauth requests", len(pre))
			}
			checkParams(t, "preauth", pre[0].Params, tt.wantPre)
			auth := f.requests("/auth/v2/auth")
			switch {
			case tt.wantAuth == nil && len(auth) != 0:
				t.Fatalf("auth was called after preauth %+v", tt.want)
			case tt.wantAuth != nil && len(auth) != 1:
				t.Fatalf("%d auth requests, want 1", len(auth))
			case tt.wantAuth != nil:
				checkParams(t, "auth", auth[0].Params, tt.wantAuth)
			}
			if tt.wantClass != nil {
				o := obs.got()
				if len(o) != len(tt.wantClass) {
					t.Fatalf("observed %+v, want classes %v", o, tt.wantClass)
				}
				for i, class := range tt.wantClass {
					wantEndpoint := []failmode.Stage{failmode.StagePreauth, failmode.StageAuth}[i]
					if o[i].Endpoint != wantEndpoint || o[i].Class != class {
						t.Errorf("observation %d: %s/%s, want %s/%s", i, o[i].Endpoint, o[i].Class, wantEndpoint, class)
					}
					if o[i].D <= 0 {
						t.Errorf("observation %d: duration %s", i, o[i].D)
					}
				}
			}
		})
	}
}

// checkParams compares the named parameters; "" means the parameter must be
// absent.
func checkParams(t *testing.T, what string, got url.Values, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if v == "" {
			if got.Has(k) {
				t.Errorf("%s: parameter %s=%q must not be sent", what, k, got.Get(k))
			}
			continue
		}
		if got.Get(k) != v {
			t.Errorf("%s: %s=%q, want %q (all: %v)", what, k, got.Get(k), v, got)
		}
	}
}

func TestVerifyRejectsInvalidAttempts(t *testing.T) {
	f := newFakeDuo(t)
	c, obs := newClient(t, f.host())
	for _, a := range []failmode.Attempt{
		{},
		{Username: "alice", Factor: failmode.FactorPasscode},
		{Username: "alice", Factor: "sms"},
	} {
		v, err := c.Verify(context.Background(), a)
		wantFailure(t, err, failmode.Local, failmode.StagePreauth, "invalid attempt")
		if v.Allowed {
			t.Errorf("%+v allowed", a)
		}
	}
	if n := len(f.requests("")); n != 0 {
		t.Errorf("%d requests sent for invalid attempts", n)
	}
	if o := obs.got(); len(o) != 0 {
		t.Errorf("observed %+v without any HTTP call", o)
	}
}

// TestVerifyConcurrent runs many binds at once through one Client, under
// -race, each seeing its own answer.
func TestVerifyConcurrent(t *testing.T) {
	f := newFakeDuo(t)
	f.set("/auth/v2/auth", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.PostForm.Get("username"), "allow") {
			okJSON(map[string]any{"result": "allow", "status_msg": "ok"})(w, r)
			return
		}
		okJSON(map[string]any{"result": "deny", "status_msg": "no"})(w, r)
	})
	c, _ := newClient(t, f.host())
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := "deny"
			if i%2 == 0 {
				user = "allow"
			}
			v, err := c.Verify(context.Background(), failmode.Attempt{Username: user, Factor: failmode.FactorPush})
			if err != nil {
				errs <- err
				return
			}
			if v.Allowed != (user == "allow") {
				errs <- &failmode.Error{Detail: "wrong verdict for " + user}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
