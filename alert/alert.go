// Package alert delivers operator alerts (Duo state changes, primary-only
// changes, failmode episodes) to a webhook without ever blocking a bind.
//
// Notify only queues: a Webhook keeps at most QueueSize undelivered events,
// dropping the oldest (and counting it) when a dead or slow receiver lets the
// queue fill, and its Run goroutine POSTs them one at a time as JSON. The
// webhook URL may carry a token (Slack, Teams), so it is never logged.
package alert

import (
	"time"
)

// Kinds of Event.
const (
	KindDuoState    = "duo_state"    // a Duo integration changed state (From, To)
	KindPrimaryOnly = "primary_only" // primary-only mode was switched on or off
	KindFailmode    = "failmode"     // a failmode episode began or ended on a server
	// KindDirectory: a directory became unusable (no URL serves, or the
	// lookup account is refused) or usable again (From, To: up, down).
	KindDirectory = "directory"
	// KindDirectoryURL: one URL of a directory went down or came back while
	// another URL still served (Directory, URL, From, To: up, down).
	KindDirectoryURL = "directory_url"
	// KindBreakGlass: a break-glass code let a user in on a server.
	KindBreakGlass = "break_glass"
	KindPushBudget = "push_budget" // a user's push budget is spent: binds refused without a push (User, ClientIP)
	KindPushFraud  = "push_fraud"  // a user reported a push as fraud: pushes blocked for them (User, ClientIP)
	// KindStateStore: the shared state store (Redis) became unavailable
	// or available again.
	KindStateStore = "state_store"
)

// Event is one operator alert, posted as this JSON object. It never carries
// a password or a DN; only the push alerts name a user (the Duo username)
// and the client address, which operators need to act on them.
type Event struct {
	Time        time.Time `json:"time"`
	Kind        string    `json:"kind"` // duo_state | primary_only | failmode | directory | directory_url | break_glass | reload | push_budget | push_fraud
	Integration string    `json:"integration,omitempty"`
	Server      string    `json:"server,omitempty"`
	User        string    `json:"user,omitempty"`
	ClientIP    string    `json:"client_ip,omitempty"`
	From        string    `json:"from,omitempty"`
	To          string    `json:"to,omitempty"`
	Msg         string    `json:"msg"`
	// Directory names a directories section; URL is one of its URLs as
	// scheme://host[:port], never with a user or password.
	Directory string `json:"directory,omitempty"`
	URL       string `json:"url,omitempty"`
}

// Notifier takes an alert. Notify must not block.
type Notifier interface {
	Notify(Event)
}

// NotifierFunc adapts a function to Notifier.
type NotifierFunc func(Event)

// Notify calls f.
func (f NotifierFunc) Notify(e Event) { f(e) }

// Nop returns a Notifier that discards every event (no webhook configured).
func Nop() Notifier { return NotifierFunc(func(Event) {}) }
