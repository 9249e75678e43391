package main

import (
	"testing"

	"github.com/jimlambrt/gldap"

	"github.com/ldapgate/ldapgate/config"
	"github.com/ldapgate/ldapgate/metrics"
)

func TestMaxConnectionsDerived(t *testing.T) {
	if got := maxConnections(&config.Server{MaxConnections: 7}, 1<<20, 3); got != 7 {
		t.Errorf("configured 7: got %d", got)
	}
	if got, want := maxConnections(&config.Server{}, 20000, 2), config.DefaultMaxConnections(20000, 2); got != want {
		t.Errorf("derived: got %d, want %d", got, want)
	}
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
