// Package authlog writes the auth event log: one JSON object per line per
// bind decision, in the shape SIEM rules written for the Duo Authentication
// Proxy's authevents.log already understand. It never sees a password or a
// passcode: failmode.BindEvent has no field for them.
package authlog

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ldapgate/ldapgate/failmode"
)

// Record is one line of the log.
type Record struct {
	Timestamp     string `json:"timestamp"` // RFC 3339, UTC
	ServerSection string `json:"server_section"`
	ClientIP      string `json:"client_ip"`
	BindName      string `json:"bind_name,omitempty"` // the name as typed
	DN            string `json:"dn"`                  // the entry the directory authenticated
	Username      string `json:"username"`
	AuthStage     string `json:"auth_stage"` // primary | secondary
	Factor        string `json:"factor"`
	Status        string `json:"status,omitempty"` // Allow | Reject | Error; empty for notices
	Msg           string `json:"msg"`
	// Rule and Failmode make failmode decisions easy to alert on.
	Rule       string  `json:"rule,omitempty"`
	Failmode   bool    `json:"failmode,omitempty"`
	DurationMS float64 `json:"duration_ms,omitempty"`
	// Event is empty for bind decisions and names the kind of a notice:
	// duo_state, primary_only, failmode.
	Event string `json:"event,omitempty"`
}

// Log writes records to w; safe for concurrent use.
type Log struct {
	mu   sync.Mutex
	path string // the file's path; "" for stdout, discard and New
	w    io.Writer
	c    io.Closer
	err  error
}

// Open opens the log at path: "-" is stdout, "" discards.
func Open(path string) (*Log, error) {
	switch path {
	case "":
		return &Log{w: io.Discard}, nil
	case "-":
		return &Log{w: os.Stdout}, nil
	}
	f, err := openFile(path)
	if err != nil {
		return nil, err
	}
	return &Log{path: path, w: f, c: f}, nil
}

func openFile(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("auth log: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("auth log: %w", err)
	}
	return f, nil
}

// Reopen opens the log's path again and writes there from now on, closing
// the file it wrote to: after logrotate renamed the file, new records land
// in a new file at the configured path. When the path cannot be opened the
// log keeps writing to the file it had and Reopen returns the error. A log
// on stdout, discarding or made with New has nothing to reopen.
func (l *Log) Reopen() error {
	if l.path == "" {
		return nil
	}
	f, err := openFile(l.path)
	if err != nil {
		return err
	}
	l.mu.Lock()
	old := l.c
	l.w, l.c, l.err = f, f, nil
	l.mu.Unlock()
	if old != nil {
		return old.Close()
	}
	return nil
}

// New writes to w (tests).
func New(w io.Writer) *Log { return &Log{w: w} }

// RecordBind implements failmode.Recorder.
func (l *Log) RecordBind(e failmode.BindEvent) { l.Write(bindRecord(e)) }

// bindRecord is the record of a bind decision, for every sink.
func bindRecord(e failmode.BindEvent) Record {
	return Record{
		Timestamp:     e.Time.UTC().Format(time.RFC3339Nano),
		ServerSection: e.Server,
		ClientIP:      e.ClientIP,
		BindName:      e.BindName,
		DN:            e.DN,
		Username:      e.Username,
		AuthStage:     string(e.Stage),
		Factor:        e.Factor,
		Status:        string(e.Status),
		Msg:           e.Msg,
		Rule:          string(e.Rule),
		Failmode:      e.Failmode,
		DurationMS:    float64(e.Duration.Microseconds()) / 1000,
	}
}

// Notice records an operational event (a Duo state change, a primary-only
// change) in the auth log, so a SIEM that watches only this file still
// learns that failmode may be deciding binds.
func (l *Log) Notice(kind, section, msg string) {
	l.Write(noticeRecord(time.Now(), kind, section, msg))
}

// noticeRecord is the record of an operational event, for every sink.
func noticeRecord(t time.Time, kind, section, msg string) Record {
	return Record{Timestamp: t.UTC().Format(time.RFC3339Nano), ServerSection: section, Event: kind, Msg: msg}
}

// Write appends one record. A write error is kept (see Err) rather than
// failing a bind: the operational log reports it.
func (l *Log) Write(r Record) {
	line, err := json.Marshal(r)
	if err != nil {
		return
	}
	line = append(line, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.w.Write(line); err != nil && l.err == nil {
		l.err = err
	}
}

// Err returns the first write error, if any.
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Close closes the file.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.c == nil {
		return nil
	}
	return l.c.Close()
}

var _ failmode.Recorder = (*Log)(nil)
