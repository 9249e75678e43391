package app

import (
	"syscall"

	"github.com/jimlambrt/gldap"

	"github.com/ldapgate/ldapgate/metrics"
)

// descriptorLimit is the process's RLIMIT_NOFILE soft limit once raised to
// the hard one. Go (1.19 and later, on Linux) raises it at start; this
// raises it too where that did not happen. 0 when it cannot be read.
func descriptorLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	if rl.Cur < rl.Max {
		raised := syscall.Rlimit{Cur: rl.Max, Max: rl.Max}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err == nil {
			rl = raised
		}
	}
	return uint64(rl.Cur)
}

// connEvents feeds a section's connection counters from gldap's events.
func connEvents(c *metrics.Conns) func(gldap.ConnEvent) {
	return func(ev gldap.ConnEvent) {
		switch ev.Kind {
		case gldap.ConnOpened:
			c.Opened()
		case gldap.ConnClosed:
			c.Closed(ev.Reason)
		case gldap.ConnRefused:
			c.Refused(ev.Reason)
		}
	}
}
