package app

import (
	"testing"

	"github.com/jimlambrt/gldap"

	"github.com/ldapgate/ldapgate/metrics"
)

func TestDescriptorLimitReadable(t *testing.T) {
	if n := descriptorLimit(); n == 0 {
		t.Error("RLIMIT_NOFILE unreadable")
	}
}

func TestConnEventsFeedTheCounters(t *testing.T) {
	c := metrics.New("t").Conns("s")
	f := connEvents(c)
	f(gldap.ConnEvent{Kind: gldap.ConnOpened})
	f(gldap.ConnEvent{Kind: gldap.ConnOpened})
	f(gldap.ConnEvent{Kind: gldap.ConnClosed, Reason: gldap.ReasonIdle})
	f(gldap.ConnEvent{Kind: gldap.ConnRefused, Reason: gldap.ReasonPerIP})
	if got := c.Open(); got != 1 {
		t.Errorf("open %v, want 1", got)
	}
}
