package app

import (
	"context"
	"crypto/tls"
	"fmt"

	"github.com/ldapgate/ldapgate/authlog"
	"github.com/ldapgate/ldapgate/config"
	"github.com/ldapgate/ldapgate/failmode"
	"github.com/ldapgate/ldapgate/internal/certfile"
)

// openAuthSyslog builds the sender that ships auth events to
// auth_syslog, when its address is set, and exposes its counters. It
// queues from now on; startAuthSyslog sends. Changing auth_syslog takes a
// restart (restartOnly).
func (a *app) openAuthSyslog(c config.AuthSyslog) error {
	if !c.Enabled() {
		return nil
	}
	var tlsCfg *tls.Config
	if c.TLS {
		// Verification is always on: there is no key to turn it off.
		tlsCfg = &tls.Config{MinVersion: config.MinTLSVersion, ServerName: c.ServerName()}
		if c.CAFile != "" {
			pool, err := config.CertPool(c.CAFile)
			if err != nil {
				return fmt.Errorf("auth_syslog.ca_file: %w", err)
			}
			tlsCfg.RootCAs = pool
		}
		if c.CertFile != "" {
			// Re-read when its files change, at the next handshake.
			pair, err := certfile.New(c.CertFile, c.KeyFile, config.CertCheckInterval, a.log.With("auth_syslog", c.Address))
			if err != nil {
				return fmt.Errorf("auth_syslog.cert_file: %w", err)
			}
			tlsCfg.GetClientCertificate = pair.GetClientCertificate
		}
	}
	s, err := authlog.NewSyslog(authlog.SyslogConfig{
		Address:      c.Address,
		TLS:          tlsCfg,
		AppName:      c.AppName,
		Facility:     c.FacilityCode(),
		Queue:        c.Queue,
		Timeout:      c.Timeout,
		MinBackoff:   config.AuthSyslogMinBackoff,
		MaxBackoff:   config.AuthSyslogMaxBackoff,
		FlushTimeout: config.AuthSyslogFlushTimeout,
		MaxMessage:   config.AuthSyslogMaxMessage,
		Log:          a.log,
	})
	if err != nil {
		return fmt.Errorf("auth_syslog: %w", err)
	}
	a.authSyslog = s
	a.metrics.AuthSyslogFunc(s.Sent, s.Dropped, s.Connected)
	return nil
}

// authSyslogRecorder is the sender as a recorder; a no-op when off.
func (a *app) authSyslogRecorder() failmode.Recorder {
	if a.authSyslog == nil {
		return failmode.RecorderFunc(func(failmode.BindEvent) {})
	}
	return a.authSyslog
}

// startAuthSyslog runs the sender until the returned func is called, which
// waits for it to send what is queued (at most AuthSyslogFlushTimeout).
// serve calls that last, once the listeners have stopped, so the binds of
// the drain are shipped too.
func (a *app) startAuthSyslog() (stop func()) {
	if a.authSyslog == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.authSyslog.Run(ctx) }()
	return func() { cancel(); <-done }
}

// notice writes an operational event to the auth log and to auth_syslog.
func (a *app) notice(kind, section, msg string) {
	a.events.Notice(kind, section, msg)
	if a.authSyslog != nil {
		a.authSyslog.Notice(kind, section, msg)
	}
}
