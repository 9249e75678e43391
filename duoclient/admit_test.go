package duoclient_test

import (
	"context"
	"errors"
	"net/url"
	"testing"

	"github.com/ldapgate/ldapgate/duosim"
	"github.com/ldapgate/ldapgate/failmode"
)

// TestPushinfo: a push tells the user which section and which address ask,
// in Duo's form-encoded pushinfo; a passcode carries none.
func TestPushinfo(t *testing.T) {
	sim := newSim(t)
	c := simClient(t, sim, nil)
	ctx := context.Background()
	if _, err := c.Verify(ctx, failmode.Attempt{Username: "alice", ClientIP: "192.0.2.7", Factor: failmode.FactorPush, Server: "vpn"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Verify(ctx, failmode.Attempt{Username: "carol", ClientIP: "192.0.2.7", Passcode: "123456", Server: "vpn"}); err != nil {
		t.Fatal(err)
	}
	var auths []duosim.Request
	for _, r := range sim.Requests() {
		if r.Path == "/auth/v2/auth" {
			auths = append(auths, r)
		}
	}
	if len(auths) != 2 {
		t.Fatalf("%d auth requests, want 2", len(auths))
	}
	info, err := url.ParseQuery(auths[0].Pushinfo)
	if err != nil || info.Get("section") != "vpn" || info.Get("client_ip") != "192.0.2.7" || len(info) != 2 {
		t.Fatalf("push carried pushinfo %q (%v), want section=vpn and client_ip=192.0.2.7", auths[0].Pushinfo, err)
	}
	if auths[1].Pushinfo != "" {
		t.Fatalf("passcode carried pushinfo %q", auths[1].Pushinfo)
	}
}

// TestAdmit: Admit is asked once preauth wants a second factor, with the
// factor about to be sent; its refusal sends nothing more, and comes back
// recognisable, at the auth stage, as our own (Local) doing.
func TestAdmit(t *testing.T) {
	sim := newSim(t)
	c := simClient(t, sim, nil)
	ctx := context.Background()
	refused := errors.New("over budget")
	var asked []failmode.Factor
	admit := func(_ context.Context, f failmode.Factor) error { asked = append(asked, f); return refused }

	_, err := c.Verify(ctx, failmode.Attempt{Username: "alice", Factor: failmode.FactorAuto, Admit: admit})
	var fe *failmode.Error
	if !errors.Is(err, refused) || !errors.As(err, &fe) || fe.Class != failmode.Local || fe.Stage != failmode.StageAuth {
		t.Fatalf("Verify = %v, want the caller's refusal as a Local error at auth", err)
	}
	if calls := sim.Calls(); calls.Preauth != 1 || calls.Auth != 0 {
		t.Fatalf("calls %+v: want one preauth and no auth", calls)
	}
	// A bypassed user needs no second factor: Admit is not asked.
	if v, err := c.Verify(ctx, failmode.Attempt{Username: "erin", Admit: admit}); err != nil || !v.Bypass {
		t.Fatalf("bypass: %+v, %v", v, err)
	}
	_, _ = c.Verify(ctx, failmode.Attempt{Username: "carol", Passcode: "123456", Admit: admit})
	if len(asked) != 2 || asked[0] != failmode.FactorAuto || asked[1] != failmode.FactorPasscode {
		t.Fatalf("Admit asked for %v, want [auto passcode]", asked)
	}
}

// TestFraud: a push the user reports as fraud is a denial that says so.
func TestFraud(t *testing.T) {
	sim := newSim(t)
	c := simClient(t, sim, nil)
	v, err := c.Verify(context.Background(), failmode.Attempt{Username: "mallory", Factor: failmode.FactorPush})
	if err != nil || v.Allowed || !v.Fraud {
		t.Fatalf("fraud report: %+v, %v; want a denial with Fraud", v, err)
	}
	v, err = c.Verify(context.Background(), failmode.Attempt{Username: "bob", Factor: failmode.FactorPush})
	if err != nil || v.Allowed || v.Fraud {
		t.Fatalf("plain denial: %+v, %v; want a denial without Fraud", v, err)
	}
}

func newSim(t *testing.T) *duosim.Sim {
	t.Helper()
	sim, err := duosim.New(duosim.Options{Users: []duosim.User{
		{Name: "alice"},
		{Name: "bob", Behavior: duosim.BehaviorDeny},
		{Name: "carol", Behavior: duosim.BehaviorPasscodeOnly, Passcodes: []string{"123456"}},
		{Name: "erin", Behavior: duosim.BehaviorBypass},
		{Name: "mallory", Behavior: duosim.BehaviorFraud},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim
}
