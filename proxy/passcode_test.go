package proxy

import (
	"testing"

	"github.com/ldapgate/ldapgate/failmode"
)

func TestSplitPasscode(t *testing.T) {
	tests := []struct {
		name, password, delimiter string
		wantPW, wantCode          string
		wantFactor                failmode.Factor
	}{
		{"no delimiter in password", "secret", ",", "secret", "", failmode.FactorAuto},
		{"six digits", "secret,123456", ",", "secret", "123456", failmode.FactorPasscode},
		{"eight digits", "secret,12345678", ",", "secret", "12345678", failmode.FactorPasscode},
		{"five digits stay in the password", "secret,12345", ",", "secret,12345", "", failmode.FactorAuto},
		{"nine digits stay in the password", "secret,123456789", ",", "secret,123456789", "", failmode.FactorAuto},
		{"push", "secret,push", ",", "secret", "", failmode.FactorPush},
		{"phone", "secret,phone", ",", "secret", "", failmode.FactorPhone},
		{"delimiter inside password", "pa,ss", ",", "pa,ss", "", failmode.FactorAuto},
		{"split at the last delimiter", "pa,ss,654321", ",", "pa,ss", "654321", failmode.FactorPasscode},
		{"digits-looking password needs a factor", "pa,123456,push", ",", "pa,123456", "", failmode.FactorPush},
		{"empty head", ",123456", ",", "", "123456", failmode.FactorPasscode},
		{"disabled", "secret,123456", "", "secret,123456", "", failmode.FactorAuto},
		{"multi-char delimiter", "secret::123456", "::", "secret", "123456", failmode.FactorPasscode},
		{"non-ascii digits are not a passcode", "secret,١٢٣٤٥٦", ",", "secret,١٢٣٤٥٦", "", failmode.FactorAuto},
		{"case matters for factors", "secret,PUSH", ",", "secret,PUSH", "", failmode.FactorAuto},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pw, code, f := splitPasscode(tt.password, tt.delimiter, failmode.FactorAuto)
			if pw != tt.wantPW || code != tt.wantCode || f != tt.wantFactor {
				t.Fatalf("got (%q, %q, %s), want (%q, %q, %s)", pw, code, f, tt.wantPW, tt.wantCode, tt.wantFactor)
			}
		})
	}
}

func FuzzSplitPasscode(f *testing.F) {
	for _, s := range []string{"secret,123456", "a,b,c", ",", "", "x,push"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pw, code, factor := splitPasscode(s, ",", failmode.FactorAuto)
		switch factor {
		case failmode.FactorPasscode:
			if pw+","+code != s || !isPasscode(code) {
				t.Fatalf("bad passcode split of %q", s)
			}
		case failmode.FactorAuto:
			if pw != s || code != "" {
				t.Fatalf("no split expected for %q", s)
			}
		default:
			if pw+","+string(factor) != s || code != "" {
				t.Fatalf("bad factor split of %q", s)
			}
		}
	})
}
