package app

import (
	"fmt"
	"strings"
	"time"

	"github.com/ldapgate/ldapgate/alert"
	"github.com/ldapgate/ldapgate/duostate"
	"github.com/ldapgate/ldapgate/primaryonly"
)

// alert tells operators about e everywhere at once: the operational log, the
// auth log (for SIEMs) and the webhook. It never blocks.
func (a *app) alert(e alert.Event) {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	attrs := []any{"alert", e.Kind, "integration", e.Integration, "server", e.Server}
	if e.Directory != "" {
		attrs = append(attrs, "directory", e.Directory, "url", e.URL)
	}
	if e.User != "" || e.ClientIP != "" {
		attrs = append(attrs, "user", e.User, "client_ip", e.ClientIP)
	}
	a.log.Warn(e.Msg, attrs...)
	a.notice(e.Kind, e.Server, e.Msg)
	a.notify.Notify(e)
}

// duoStateChanged runs on every change of a Duo integration's state.
func (a *app) duoStateChanged(ch duostate.Change) {
	a.metrics.SetDuoState(ch.Integration, ch.To)
	var sections []string
	for _, s := range a.state().sections {
		if s.duo.client.Integration() == ch.Integration {
			sections = append(sections, s.cfg.Name)
		}
	}
	msg := fmt.Sprintf("duo state changed: %s -> %s (%s)", ch.From, ch.To, ch.Reason)
	if len(sections) > 0 {
		msg += "; sections " + strings.Join(sections, ", ")
	}
	a.alert(alert.Event{Time: ch.At, Kind: "duo_state", Integration: ch.Integration, From: string(ch.From), To: string(ch.To), Msg: msg})
	a.episodes.DuoStateChanged(sections, ch.From, ch.To)
}

// primaryOnlyChanged runs on every change of the emergency switch.
func (a *app) primaryOnlyChanged(ev primaryonly.Event) {
	a.metrics.SetPrimaryOnlyUntil(ev.Server, ev.Until)
	var msg string
	if ev.Enabled {
		msg = fmt.Sprintf("primary-only mode enabled on %s until %s (%s): binds need only the password, except secure groups",
			ev.Server, ev.Until.UTC().Format(time.RFC3339), ev.Reason)
	} else {
		msg = fmt.Sprintf("primary-only mode off on %s (%s)", ev.Server, ev.Reason)
	}
	a.alert(alert.Event{Time: ev.At, Kind: "primary_only", Server: ev.Server, Msg: msg})
}
