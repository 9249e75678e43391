package integration

import (
	"os"
	"strings"
	"testing"

	"github.com/ldapgate/ldapgate/duosim"
	"github.com/ldapgate/ldapgate/internal/sampledata"
)

// TestSecretsNeverLogged runs binds of every kind, with debug logging, and
// then looks for every password, passcode and key in everything ldapgate
// wrote.
func TestSecretsNeverLogged(t *testing.T) {
	e := start(t, []section{secureSection, safeSection})
	for _, fault := range []duosim.Fault{duosim.FaultNone, duosim.FaultRefuse, duosim.FaultUnauthorized, duosim.FaultAuthError} {
		if err := e.duo.SetFault(fault); err != nil {
			t.Fatal(err)
		}
		for _, p := range sampledata.People {
			for _, suffix := range append([]string{"", ",push", "-wrong"}, prefixed(",", p.Passcodes)...) {
				_ = e.bind("safe", p.DN(), p.Password+suffix)
			}
			_ = e.bind("secure", p.UID, p.Password)
		}
	}
	_ = e.duo.SetFault(duosim.FaultNone)
	e.waitEvents(1)

	svc, _ := sampledata.LookupService("ldapgate")
	secrets := []string{e.duo.SecretKey(), svc.Password}
	for _, p := range sampledata.People {
		secrets = append(secrets, p.Password)
		// Digits alone also occur in timestamps and durations; a leaked
		// passcode would stand after a delimiter, a quote, '=' or a space.
		for _, code := range p.Passcodes {
			secrets = append(secrets, ","+code, `"`+code+`"`, "="+code, " "+code)
		}
	}
	authLog, err := os.ReadFile(e.authLog)
	if err != nil {
		t.Fatal(err)
	}
	if len(authLog) == 0 || !strings.Contains(e.stderr.String(), "level") {
		t.Fatal("nothing was logged: this test would prove nothing")
	}
	for name, text := range map[string]string{"operational log": e.stderr.String(), "auth log": string(authLog)} {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s contains the secret %q", name, s)
			}
		}
	}
}

func prefixed(prefix string, in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = prefix + s
	}
	return out
}
