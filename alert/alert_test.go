package alert

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ldapgate/ldapgate/duostate"
	"github.com/ldapgate/ldapgate/failmode"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

// received is one request a test receiver got.
type received struct {
	method, contentType, userAgent string
	event                          Event
	raw                            map[string]any
}

// receiver is an httptest webhook receiver answering with codes in turn
// (200 once they run out) and reporting every request on got.
func receiver(t *testing.T, codes ...int) (*httptest.Server, <-chan received) {
	t.Helper()
	got := make(chan received, 100)
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc := received{method: r.Method, contentType: r.Header.Get("Content-Type"), userAgent: r.Header.Get("User-Agent")}
		if err := json.Unmarshal(body, &rc.event); err != nil {
			t.Errorf("body %q: %v", body, err)
		}
		json.Unmarshal(body, &rc.raw)
		code := 200
		if i := int(n.Add(1)) - 1; i < len(codes) {
			code = codes[i]
		}
		w.WriteHeader(code)
		got <- rc
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

// run starts w.Run and returns a stop that waits for it.
func run(t *testing.T, w *Webhook) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Error("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func fastBackoff(w *Webhook) { w.backoff = []time.Duration{time.Millisecond, 2 * time.Millisecond} }

func recv(t *testing.T, ch <-chan received) received {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("receiver got nothing")
	}
	return received{}
}

// waitFor waits until cond holds, checking whenever the receiver hears
// something or Run makes progress; it fails after a generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, cond, what)
}

func TestWebhookDelivers(t *testing.T) {
	srv, got := receiver(t)
	w := NewWebhook(srv.URL+"/hook?token=s3cret", time.Second, nil)
	run(t, w)
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	w.Notify(Event{Time: at, Kind: KindDuoState, Integration: "api-x/DIX", From: "ok", To: "unreachable", Msg: "duo state changed"})
	w.Notify(Event{Kind: KindPrimaryOnly, Server: "corp", Msg: "primary-only on"})

	r := recv(t, got)
	if r.method != "POST" || r.contentType != "application/json" || r.userAgent != "ldapgate" {
		t.Errorf("request %+v", r)
	}
	want := Event{Time: at, Kind: KindDuoState, Integration: "api-x/DIX", From: "ok", To: "unreachable", Msg: "duo state changed"}
	if r.event != want {
		t.Errorf("event %+v, want %+v", r.event, want)
	}
	if r.raw["time"] != "2026-03-04T05:06:07Z" || r.raw["kind"] != "duo_state" {
		t.Errorf("json %v", r.raw)
	}
	r = recv(t, got)
	if r.event.Kind != KindPrimaryOnly || r.event.Time.IsZero() {
		t.Errorf("second event %+v: in order, with a time", r.event)
	}
	if _, ok := r.raw["integration"]; ok {
		t.Errorf("empty fields are omitted: %v", r.raw)
	}
	waitFor(t, "delivered=2", func() bool { return w.Delivered() == 2 })
}

func TestWebhookRetries(t *testing.T) {
	srv, got := receiver(t, 503, 500)
	w := NewWebhook(srv.URL, time.Second, nil)
	fastBackoff(w)
	run(t, w)
	w.Notify(Event{Kind: KindFailmode, Server: "corp", Msg: "m"})
	for i := 1; i <= 3; i++ {
		if r := recv(t, got); r.event.Msg != "m" {
			t.Fatalf("attempt %d: %+v", i, r.event)
		}
	}
	waitFor(t, "delivered", func() bool { return w.Delivered() == 1 })
	if w.Failed() != 0 {
		t.Fatalf("failed %d", w.Failed())
	}
}

func TestWebhookGivesUp(t *testing.T) {
	srv, got := receiver(t, 500, 500, 500, 400)
	w := NewWebhook(srv.URL, time.Second, nil)
	fastBackoff(w)
	run(t, w)
	w.Notify(Event{Kind: KindFailmode, Msg: "first"})
	w.Notify(Event{Kind: KindFailmode, Msg: "second"})
	for range 3 {
		if r := recv(t, got); r.event.Msg != "first" {
			t.Fatalf("%+v", r.event)
		}
	}
	// A 400 is not retried: the receiver will not change its mind.
	if r := recv(t, got); r.event.Msg != "second" {
		t.Fatalf("%+v", r.event)
	}
	waitFor(t, "failed=2", func() bool { return w.Failed() == 2 })
	select {
	case r := <-got:
		t.Fatalf("unexpected retry %+v", r.event)
	default:
	}
	if w.Delivered() != 0 {
		t.Fatalf("delivered %d", w.Delivered())
	}
}

// deadURL is a loopback address where nothing listens.
func deadURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/hook"
}

func notifyMany(t *testing.T, w *Webhook, n int) time.Duration {
	t.Helper()
	start := time.Now()
	for i := range n {
		w.Notify(Event{Kind: KindFailmode, Server: "corp", Msg: "event " + string(rune('a'+i%26))})
	}
	return time.Since(start)
}

func TestWebhookDeadReceiverNeverBlocks(t *testing.T) {
	w := NewWebhook(deadURL(t), time.Second, nil)
	// Real backoff: the sender spends its time waiting between refused
	// attempts while Notify keeps being called.
	run(t, w)
	if d := notifyMany(t, w, 10_000); d > 2*time.Second {
		t.Fatalf("10k Notify calls took %s", d)
	}
	if w.Dropped() < 10_000-QueueSize-1 {
		t.Fatalf("dropped %d, want at least %d", w.Dropped(), 10_000-QueueSize-1)
	}
	if p := w.Pending(); p > QueueSize {
		t.Fatalf("pending %d > %d", p, QueueSize)
	}
}

func TestWebhookStuckReceiverNeverBlocks(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case entered <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	w := NewWebhook(srv.URL, time.Minute, nil)
	stop := run(t, w)
	w.Notify(Event{Kind: KindFailmode, Msg: "stuck"})
	<-entered // the sender is now inside a POST that will not finish
	if d := notifyMany(t, w, 10_000); d > 2*time.Second {
		t.Fatalf("10k Notify calls took %s", d)
	}
	if w.Dropped() != 10_000-QueueSize {
		t.Fatalf("dropped %d, want %d", w.Dropped(), 10_000-QueueSize)
	}
	// The newest events are kept.
	w.mu.Lock()
	last := w.ring[(w.head+w.n-1)%QueueSize]
	w.mu.Unlock()
	if last.Msg != "event "+string(rune('a'+9_999%26)) {
		t.Fatalf("newest queued %q", last.Msg)
	}
	stop() // Run honours ctx even in the middle of a POST
}

func TestWebhookRunHonoursCtxDuringBackoff(t *testing.T) {
	w := NewWebhook(deadURL(t), time.Second, nil)
	w.backoff = []time.Duration{time.Hour}
	stop := run(t, w)
	w.Notify(Event{Kind: KindFailmode, Msg: "x"})
	waitFor(t, "the queue to be taken", func() bool { return w.Pending() == 0 })
	stop()
	if w.Failed() != 1 {
		t.Fatalf("failed %d", w.Failed())
	}
}

func TestWebhookURLNeverLogged(t *testing.T) {
	var buf strings.Builder
	var mu sync.Mutex
	log := newTestLogger(&buf, &mu)
	srv, got := receiver(t, 500, 500, 500)
	w := NewWebhook(srv.URL+"/T0/B0/tok3n", time.Second, log)
	fastBackoff(w)
	run(t, w)
	w.Notify(Event{Kind: KindFailmode, Msg: "x"})
	for range 3 {
		recv(t, got)
	}
	waitFor(t, "failed", func() bool { return w.Failed() == 1 })
	bad := NewWebhook("http://127.0.0.1:1/%zz/tok3n", time.Second, log)
	run(t, bad)
	bad.Notify(Event{Kind: KindFailmode, Msg: "y"})
	waitFor(t, "failed", func() bool { return bad.Failed() == 1 })
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(buf.String(), "tok3n") {
		t.Fatalf("the URL leaked into the log:\n%s", buf.String())
	}
	if !strings.Contains(buf.String(), "alert not delivered") {
		t.Fatalf("failure not logged:\n%s", buf.String())
	}
}

// collect is a Notifier recording what it gets.
type collect struct {
	mu     sync.Mutex
	events []Event
}

func (c *collect) Notify(e Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, e)
}

func (c *collect) take() []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.events
	c.events = nil
	return out
}

func fmEvent(server, rule string, allow bool) failmode.BindEvent {
	st := failmode.StatusError
	if allow {
		st = failmode.StatusAllow
	}
	// Msg is what failmode wrote for people; alerts read the Cause, never
	// the prose (a Msg with misleading parentheses proves it).
	cause := failmode.Outcome{Class: failmode.Unreachable, Stage: failmode.StagePreauth, Detail: "connection refused (dial tcp)"}
	if rule == string(failmode.RuleFailmodeDeny) {
		cause.Detail = "known down"
	}
	return failmode.BindEvent{Server: server, DN: "uid=alice,dc=example,dc=com", Username: "alice",
		Stage: failmode.AuthSecondary, Status: st, Rule: failmode.Rule(rule), Failmode: true, Cause: cause,
		Msg: "failmode: decided (not the cause)"}
}

func TestEpisodes(t *testing.T) {
	c := &collect{}
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var clock atomic.Int64
	e := NewEpisodes(c, func() time.Time { return now.Add(time.Duration(clock.Load())) })
	var _ failmode.Recorder = e

	// Not failmode: nothing.
	e.RecordBind(failmode.BindEvent{Server: "corp", Rule: "second_factor", Status: failmode.StatusAllow})
	e.DuoStateChanged([]string{"corp", "vpn"}, duostate.Unreachable, duostate.OK)
	if got := c.take(); len(got) != 0 {
		t.Fatalf("no episode, got %v", got)
	}

	// An episode: concurrent binds on two servers.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch {
			case i < 17:
				e.RecordBind(fmEvent("corp", "failmode_safe", true))
			case i < 19:
				e.RecordBind(fmEvent("corp", "secure_group", false))
			default:
				e.RecordBind(fmEvent("vpn", "failmode_secure", false))
			}
		}()
	}
	wg.Wait()
	e.RecordBind(fmEvent("corp", "secure_group", false))
	got := c.take()
	if len(got) != 2 {
		t.Fatalf("one event per server per episode, got %d: %+v", len(got), got)
	}
	byServer := map[string]Event{}
	for _, ev := range got {
		byServer[ev.Server] = ev
	}
	if ev := byServer["corp"]; ev.Kind != KindFailmode || ev.Msg != "failmode safe: allowing binds without second factor (duo unreachable: connection refused (dial tcp))" || !ev.Time.Equal(now) {
		t.Errorf("corp: %+v", ev)
	}
	if ev := byServer["vpn"]; ev.Msg != "failmode secure: denying binds (duo unreachable: known down)" {
		t.Errorf("vpn: %+v", ev)
	}
	for _, ev := range got {
		if strings.Contains(ev.Msg, "alice") {
			t.Errorf("an alert names the user: %q", ev.Msg)
		}
	}
	if a := e.Active(); len(a) != 2 || a[0] != "corp" || a[1] != "vpn" {
		t.Fatalf("active %v", a)
	}

	clock.Store(int64(4*time.Minute + 12*time.Second))
	// A change that does not bring Duo back ends nothing.
	e.DuoStateChanged([]string{"corp", "vpn"}, duostate.OK, duostate.Unreachable)
	e.DuoStateChanged([]string{"corp", "vpn"}, duostate.Unreachable, duostate.Misconfigured)
	e.DuoStateChanged([]string{"corp", "vpn"}, duostate.OK, duostate.Degraded)
	if got := c.take(); len(got) != 0 {
		t.Fatalf("no recovery, but %+v", got)
	}
	e.DuoStateChanged([]string{"corp", "vpn"}, duostate.Unreachable, duostate.OK)
	got = c.take()
	want := []string{
		"corp: failmode episode ended: 17 binds allowed without second factor, 3 denied (duo ok; lasted 4m12s)",
		"vpn: failmode episode ended: 0 binds allowed without second factor, 1 denied (duo ok; lasted 4m12s)",
	}
	if len(got) != len(want) {
		t.Fatalf("summaries %+v", got)
	}
	for i, ev := range got {
		if s := ev.Server + ": " + ev.Msg; s != want[i] || ev.Kind != KindFailmode {
			t.Errorf("summary %q, want %q", s, want[i])
		}
	}
	if len(e.Active()) != 0 {
		t.Fatal("a recovery must end the episodes")
	}
	e.DuoStateChanged([]string{"corp", "vpn"}, duostate.Misconfigured, duostate.OK)
	if got := c.take(); len(got) != 0 {
		t.Fatalf("a second recovery says nothing, got %v", got)
	}

	// A new episode alerts again.
	e.RecordBind(fmEvent("corp", "failmode_safe", true))
	e.RecordBind(fmEvent("vpn", "failmode_secure", false))
	if got := c.take(); len(got) != 2 {
		t.Fatalf("new episode: %+v", got)
	}
	// Only the sections of the integration that recovered leave theirs.
	e.DuoStateChanged([]string{"vpn"}, duostate.Unreachable, duostate.Degraded)
	got = c.take()
	if len(got) != 1 || got[0].Server != "vpn" || !strings.HasPrefix(got[0].Msg, "failmode episode ended: 0 binds allowed without second factor, 1 denied (duo degraded") {
		t.Fatalf("recovery of vpn's integration: %+v", got)
	}
	if a := e.Active(); len(a) != 1 || a[0] != "corp" {
		t.Fatalf("active %v", a)
	}
}
