package failmode

import (
	"fmt"
	"slices"
	"testing"
)

// TestBreakGlassMatrix: over every outcome, stage, mode and subject, a
// break-glass code lets a user in exactly when Duo is known unreachable,
// failmode denied the bind because of it at preauth, and the code was
// accepted; it never turns any other refusal into an allow, and never
// touches a bind failmode already allowed.
func TestBreakGlassMatrix(t *testing.T) {
	n := 0
	for _, c := range append(Classes(), Class(-1), Class(99)) {
		for _, st := range []Stage{StagePreauth, StageAuth, StageCheck} {
			for _, mode := range []Mode{Safe, Secure, ""} {
				for _, sg := range []bool{false, true} {
					for _, unreachable := range []bool{false, true} {
						for _, accepted := range []bool{false, true} {
							n++
							o := Outcome{Class: c, Stage: st, Detail: "x"}
							d := Decide(Policy{Mode: mode}, Subject{SecureGroup: sg}, o)
							got := BreakGlass(d, unreachable, accepted)
							name := fmt.Sprintf("class=%s stage=%s mode=%q sg=%v unreachable=%v accepted=%v", c, st, mode, sg, unreachable, accepted)
							deniedByFailmode := c == Unreachable && st == StagePreauth && (mode != Safe || sg)
							eligible := unreachable && deniedByFailmode
							if BreakGlassEligible(d, unreachable) != eligible {
								t.Errorf("%s: eligible %v, want %v", name, !eligible, eligible)
							}
							switch {
							case !eligible:
								if got != d {
									t.Errorf("%s: an ineligible decision changed: %+v -> %+v", name, d, got)
								}
							case accepted:
								if !got.Allow || got.Rule != RuleBreakGlass || got.Diagnostic != "" || got.Failmode {
									t.Errorf("%s: %+v, want allowed by break_glass", name, got)
								}
							default:
								if got.Allow || got.Rule != RuleBreakGlassInvalid || got.Diagnostic == "" || got.Status() != StatusReject {
									t.Errorf("%s: %+v, want denied by break_glass_invalid", name, got)
								}
							}
							if got.Cause != o || got.Reason == "" || !slices.Contains(Rules(), got.Rule) {
								t.Errorf("%s: %+v: cause, reason and a listed rule are required", name, got)
							}
						}
					}
				}
			}
		}
	}
	if n != (len(Classes())+2)*3*3*2*2*2 {
		t.Fatalf("matrix walked %d cases", n)
	}
}

func TestBreakGlassRefused(t *testing.T) {
	d := BreakGlassRefused()
	if d.Allow || d.Rule != RuleBreakGlassRefused || d.Diagnostic == "" || d.Status() != StatusReject {
		t.Fatalf("%+v", d)
	}
	if BreakGlassEligible(d, true) {
		t.Fatal("a refusal of the code must not make it eligible")
	}
}
