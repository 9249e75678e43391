package authlog

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/ldapgate/ldapgate/failmode"
)

// Syslog ships the auth log's records to a syslog server as well, so they
// survive an intruder who deletes the local logs: RFC 5424 messages whose
// MSG is the record's JSON line, over TCP with octet-counting framing (RFC
// 6587 §3.4.1), optionally over TLS (RFC 5425).
//
// RecordBind and Notice never block: they queue the message, or
// drop it and count it when the queue is full. Run, in one goroutine,
// connects, sends and reconnects; nothing a bind does waits on it. Create
// one with NewSyslog.
type Syslog struct {
	cfg    SyslogConfig
	host   string // HOSTNAME, PRINTUSASCII
	app    string // APP-NAME
	procid string // PROCID
	queue  chan []byte

	sent, dropped atomic.Uint64
	connected     atomic.Bool
}

var _ failmode.Recorder = (*Syslog)(nil)

// SyslogConfig is what a Syslog takes. config holds every default and
// bound (auth_syslog and the AuthSyslog constants); values here are used
// as they are.
type SyslogConfig struct {
	Address string // host:port
	// TLS, when not nil, speaks TLS with it (its roots, server name and
	// client certificate are the caller's); nil: plain TCP.
	TLS      *tls.Config
	AppName  string
	Facility int // 0 to 23
	// Hostname is HOSTNAME of every message; "" is os.Hostname.
	Hostname string
	// Queue is how many messages may wait for the sender.
	Queue int
	// Timeout bounds one connection attempt (with the TLS handshake) and
	// one write.
	Timeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between connection
	// attempts while the server cannot be reached.
	MinBackoff, MaxBackoff time.Duration
	// FlushTimeout is how long Run may go on sending queued messages once
	// its context is done.
	FlushTimeout time.Duration
	// MaxMessage bounds one message in bytes (header and record).
	MaxMessage int
	Log        *slog.Logger // nil discards
}

// Syslog severities (RFC 5424 §6.2.1) the records use.
const (
	sevErr     = 3
	sevWarning = 4
	sevNotice  = 5
	sevInfo    = 6
)

// severities maps a bind's status to its syslog severity. A bind that
// failmode let in without a second factor is a warning (see severity);
// notices (no status) and anything unknown are notices.
var severities = map[string]int{
	string(failmode.StatusAllow):  sevInfo,
	string(failmode.StatusReject): sevNotice,
	string(failmode.StatusError):  sevErr,
}

func severity(r Record) int {
	if r.Status == string(failmode.StatusAllow) && r.Failmode {
		return sevWarning
	}
	if s, ok := severities[r.Status]; ok {
		return s
	}
	return sevNotice
}

// RFC 5424 bounds of the header fields.
const (
	maxHostname = 255
	maxAppName  = 48
	maxProcID   = 128
	maxMsgID    = 32
)

// NewSyslog checks cfg and returns a Syslog that queues from now on; Run
// sends.
func NewSyslog(cfg SyslogConfig) (*Syslog, error) {
	switch {
	case cfg.Address == "":
		return nil, errors.New("auth syslog: no address")
	case cfg.Queue < 1:
		return nil, fmt.Errorf("auth syslog: queue %d is not positive", cfg.Queue)
	case cfg.Timeout <= 0 || cfg.MinBackoff <= 0 || cfg.MaxBackoff < cfg.MinBackoff || cfg.FlushTimeout < 0:
		return nil, errors.New("auth syslog: timeout and backoffs must be positive (pass config's values)")
	case cfg.Facility < 0 || cfg.Facility > 23:
		return nil, fmt.Errorf("auth syslog: facility %d is not 0 to 23", cfg.Facility)
	case cfg.MaxMessage < 512:
		return nil, fmt.Errorf("auth syslog: max message %d is below 512 bytes", cfg.MaxMessage)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	return &Syslog{
		cfg:    cfg,
		host:   headerField(cfg.Hostname, maxHostname),
		app:    headerField(cfg.AppName, maxAppName),
		procid: headerField(strconv.Itoa(os.Getpid()), maxProcID),
		queue:  make(chan []byte, cfg.Queue),
	}, nil
}

// RecordBind implements failmode.Recorder: the bind's record, as the auth
// log writes it, with MSGID its rule.
func (s *Syslog) RecordBind(e failmode.BindEvent) { s.enqueue(e.Time, bindRecord(e)) }

// Notice queues an operational event, as Log.Notice writes it, with MSGID
// its kind.
func (s *Syslog) Notice(kind, section, msg string) {
	now := time.Now()
	s.enqueue(now, noticeRecord(now, kind, section, msg))
}

func (s *Syslog) enqueue(t time.Time, r Record) {
	msg, err := s.format(t, r)
	if err != nil {
		s.dropped.Add(1)
		return
	}
	select {
	case s.queue <- msg:
	default:
		s.dropped.Add(1)
	}
}

// Sent counts messages written to the server.
func (s *Syslog) Sent() uint64 { return s.sent.Load() }

// Dropped counts messages given up on: the queue was full, or the sender
// stopped before it could send them.
func (s *Syslog) Dropped() uint64 { return s.dropped.Load() }

// Connected reports whether the sender holds a connection to the server.
func (s *Syslog) Connected() bool { return s.connected.Load() }

// format is one framed message: "LEN <PRI>1 TIMESTAMP HOSTNAME APP-NAME
// PROCID MSGID - JSON". The record's longest text fields are shortened
// until the message fits MaxMessage.
func (s *Syslog) format(t time.Time, r Record) ([]byte, error) {
	msgid := "-"
	if r.Rule != "" {
		msgid = headerField(r.Rule, maxMsgID)
	} else if r.Event != "" {
		msgid = headerField(r.Event, maxMsgID)
	}
	header := fmt.Sprintf("<%d>1 %s %s %s %s %s - ", s.cfg.Facility*8+severity(r),
		t.UTC().Format("2006-01-02T15:04:05.000000Z07:00"), s.host, s.app, s.procid, msgid)
	body, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	for limit := 1024; len(header)+len(body) > s.cfg.MaxMessage; limit /= 2 {
		if limit < 16 {
			return nil, errors.New("auth syslog: record too long")
		}
		short := r
		for _, f := range []*string{&short.BindName, &short.DN, &short.Username, &short.Msg, &short.ClientIP, &short.Factor, &short.ServerSection} {
			*f = shorten(*f, limit)
		}
		if body, err = json.Marshal(short); err != nil {
			return nil, err
		}
	}
	n := len(header) + len(body)
	out := make([]byte, 0, n+8)
	out = strconv.AppendInt(out, int64(n), 10)
	out = append(out, ' ')
	out = append(out, header...)
	return append(out, body...), nil
}

// shorten cuts s to at most n bytes on a rune boundary, marked with "…".
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// headerField makes s a header field: PRINTUSASCII (33-126, anything else
// becomes '_'), at most n bytes, "-" when empty.
func headerField(s string, n int) string {
	if s == "" {
		return "-"
	}
	out := strings.Map(func(r rune) rune {
		if r < 33 || r > 126 {
			return '_'
		}
		return r
	}, s)
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// conn is one connection to the server; dead is closed when the server
// closed it or it broke (a syslog server never sends anything, so the
// reader sees only the end).
type conn struct {
	net.Conn
	since time.Time
	dead  chan struct{}
	err   error // why it ended; read after dead is closed
}

// sender is Run's state; only Run's goroutine touches it.
type sender struct {
	s       *Syslog
	c       *conn // nil while disconnected
	backoff time.Duration
	wait    time.Duration // before the next connection attempt
	down    bool          // the server is known unreachable (logged once)
}

// Run sends queued messages until ctx is done, then for up to FlushTimeout
// more; what is still queued then is counted as dropped. Run it once, in
// one goroutine.
func (s *Syslog) Run(ctx context.Context) {
	sd := &sender{s: s, backoff: s.cfg.MinBackoff}
	defer sd.disconnect(nil)
	for {
		var dead chan struct{}
		if sd.c != nil {
			dead = sd.c.dead
		}
		select {
		case <-ctx.Done():
			sd.flush(nil)
			return
		case <-dead:
			sd.disconnect(sd.c.err)
		case msg := <-s.queue:
			if !sd.deliver(ctx, msg) {
				sd.flush(msg)
				return
			}
		}
	}
}

// flush sends what is queued (held first) for up to FlushTimeout.
func (sd *sender) flush(held []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), sd.s.cfg.FlushTimeout)
	defer cancel()
	lost := 0
	if held != nil && !sd.deliver(ctx, held) {
		lost++
	}
	// At most what the queue held: binds that still record cannot keep
	// the stop waiting.
	for range cap(sd.s.queue) {
		var msg []byte
		select {
		case msg = <-sd.s.queue:
		default:
		}
		if msg == nil {
			break
		}
		if lost > 0 || !sd.deliver(ctx, msg) {
			lost++
		}
	}
	if lost > 0 {
		sd.s.dropped.Add(uint64(lost))
		sd.s.cfg.Log.Warn("auth syslog stopped with unsent records", "address", sd.s.cfg.Address, "count", lost)
	}
}

// deliver writes msg, connecting (and reconnecting) as needed, until it is
// written or ctx is done (false).
func (sd *sender) deliver(ctx context.Context, msg []byte) bool {
	for ctx.Err() == nil {
		if sd.c != nil {
			select {
			case <-sd.c.dead:
				sd.disconnect(sd.c.err)
			default:
			}
		}
		if sd.c == nil && !sd.connect(ctx) {
			continue
		}
		if err := sd.write(msg); err != nil {
			sd.disconnect(err)
			continue
		}
		sd.s.sent.Add(1)
		return true
	}
	return false
}

// connect waits out the backoff, then makes one attempt; false when it
// failed (or ctx ended first).
func (sd *sender) connect(ctx context.Context) bool {
	if sd.wait > 0 {
		t := time.NewTimer(sd.wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
	nc, err := sd.s.dial(ctx)
	if err != nil {
		sd.wait, sd.backoff = sd.backoff, min(2*sd.backoff, sd.s.cfg.MaxBackoff)
		if !sd.down {
			sd.down = true
			sd.s.cfg.Log.Warn("auth syslog unreachable: auth events wait in the queue", "address", sd.s.cfg.Address, "err", err)
		} else {
			sd.s.cfg.Log.Debug("auth syslog: connection attempt failed", "address", sd.s.cfg.Address, "err", err)
		}
		return false
	}
	c := &conn{Conn: nc, since: time.Now(), dead: make(chan struct{})}
	go func() {
		_, err := io.Copy(io.Discard, nc)
		if err == nil {
			err = errors.New("closed by the server")
		}
		c.err = err
		close(c.dead)
	}()
	sd.c, sd.down, sd.wait = c, false, 0
	sd.s.connected.Store(true)
	sd.s.cfg.Log.Info("auth syslog connected", "address", sd.s.cfg.Address, "tls", sd.s.cfg.TLS != nil)
	return true
}

// dial opens one connection within Timeout.
func (s *Syslog) dial(ctx context.Context) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	d := &net.Dialer{}
	var (
		c   net.Conn
		err error
	)
	if s.cfg.TLS != nil {
		c, err = (&tls.Dialer{NetDialer: d, Config: s.cfg.TLS}).DialContext(ctx, "tcp", s.cfg.Address)
	} else {
		c, err = d.DialContext(ctx, "tcp", s.cfg.Address)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", s.cfg.Address, err)
	}
	return c, nil
}

func (sd *sender) write(msg []byte) error {
	if err := sd.c.SetWriteDeadline(time.Now().Add(sd.s.cfg.Timeout)); err != nil {
		return err
	}
	if _, err := sd.c.Write(msg); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	sd.backoff = sd.s.cfg.MinBackoff
	return nil
}

// disconnect closes the connection, if any, and logs why (err nil: the
// sender stops). A connection that ended soon after it was made waits out
// a backoff before the next attempt, so a server that accepts and closes
// at once is not hammered.
func (sd *sender) disconnect(err error) {
	c := sd.c
	if c == nil {
		return
	}
	sd.c = nil
	if tc, ok := c.Conn.(*tls.Conn); ok && err != nil {
		// A broken connection gets no close_notify: writing it could
		// wait on the very server that stopped reading.
		tc.NetConn().Close()
	} else {
		c.Close()
	}
	<-c.dead
	sd.s.connected.Store(false)
	if err == nil {
		return
	}
	if time.Since(c.since) < sd.s.cfg.MaxBackoff {
		sd.wait, sd.backoff = sd.backoff, min(2*sd.backoff, sd.s.cfg.MaxBackoff)
	}
	sd.s.cfg.Log.Warn("auth syslog disconnected: reconnecting", "address", sd.s.cfg.Address, "err", err)
}
