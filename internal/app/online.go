package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/ldapgate/ldapgate/config"
	"github.com/ldapgate/ldapgate/directory"
	"github.com/ldapgate/ldapgate/failmode"
	"github.com/ldapgate/ldapgate/internal/human"
)

// checkOnline is `ldapgate check --online`, the counterpart of the Duo
// Authentication Proxy's connectivity tool: with the configuration already
// valid, it proves every outside party answers as serve needs. Each
// directory URL is dialled on its own (with its TLS details) and, with a
// lookup account, bound as it; each secure group is read as the lookup
// account; each Duo integration gets a signed /auth/v2/check, and Duo's
// clock is compared with ours. One result each, in order.
func checkOnline(ctx context.Context, cfg *config.Config) []onlineResult {
	var results []onlineResult
	report := func(good bool, subject, format string, args ...any) {
		results = append(results, onlineResult{OK: good, Subject: subject, Detail: fmt.Sprintf(format, args...)})
	}
	names := make([]string, 0, len(cfg.Directories))
	for name := range cfg.Directories {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		checkDirectory(ctx, cfg, cfg.Directories[name], report)
	}
	seen := map[string]bool{}
	for i, sc := range cfg.Servers {
		id := failmode.Integration(sc.Duo.APIHost, sc.Duo.IntegrationKey)
		if seen[id] {
			continue
		}
		seen[id] = true
		checkDuo(ctx, sc.Duo, fmt.Sprintf("servers[%d].duo (%s)", i, id), report)
	}
	return results
}

// onlineResult is one line of check --online.
type onlineResult struct {
	OK      bool   `json:"ok"`
	Subject string `json:"subject"`
	Detail  string `json:"detail"`
}

func (r onlineResult) String() string {
	word := "ok  "
	if !r.OK {
		word = "fail"
	}
	return word + " " + r.Subject + ": " + r.Detail
}

type reporter func(good bool, subject, format string, args ...any)

func checkDirectory(ctx context.Context, cfg *config.Config, dc *config.Directory, report reporter) {
	// The clients are built as serve builds them, by an app of their own.
	builder := &app{log: slog.New(slog.DiscardHandler)}
	for i, u := range dc.URLs {
		subject := fmt.Sprintf("directories.%s.urls[%d] %s", dc.Name, i, u)
		one := *dc
		one.URLs = []string{u}
		client, err := builder.newDirectory(&one, nil)
		if err != nil {
			report(false, subject, "%v", err)
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, dc.Timeout)
		conn, err := client.Dial(pctx)
		if err != nil {
			report(false, subject, "cannot connect: %v", err)
			cancel()
			client.Close()
			continue
		}
		transport := "cleartext"
		if st, isTLS := conn.TLSConnectionState(); isTLS {
			transport = tlsSummary(st)
		}
		conn.Close()
		switch err := client.Ping(pctx); {
		case err != nil && errors.Is(err, directory.ErrLookupAccount):
			report(false, subject, "connected (%s), but the directory refused the lookup account %s: %v", transport, dc.BindDN, err)
		case err != nil:
			report(false, subject, "connected (%s), but: %v", transport, err)
		case dc.BindDN != "":
			report(true, subject, "connected (%s), lookup account %s bound", transport, dc.BindDN)
		default:
			report(true, subject, "connected (%s), answers anonymously (no lookup account: binds are checked as the user)", transport)
		}
		cancel()
		client.Close()
	}
	client, err := builder.newDirectory(dc, nil)
	if err != nil {
		return // reported for each URL
	}
	defer client.Close()
	gctx, cancel := context.WithTimeout(ctx, dc.Timeout)
	defer cancel()
	checkSecureGroups(gctx, cfg, dc, client, report)
}

// checkSecureGroups reads each secure group of the sections on dc as the
// lookup account.
func checkSecureGroups(ctx context.Context, cfg *config.Config, dc *config.Directory, client *directory.Client, report reporter) {
	for i, sc := range cfg.Servers {
		if !strings.EqualFold(sc.Directory, dc.Name) {
			continue
		}
		for j, g := range sc.SecureGroups {
			subject := fmt.Sprintf("servers[%d].secure_groups[%d] %s", i, j, g)
			if dc.BindDN == "" {
				report(true, subject, "not checked: without a lookup account each bind reads it as the user")
				continue
			}
			if err := client.ReadEntry(ctx, nil, g); err != nil {
				report(false, subject, "the lookup account cannot read it (every user would count as privileged): %v", err)
				continue
			}
			report(true, subject, "readable by the lookup account")
		}
	}
}

func checkDuo(ctx context.Context, dc config.Duo, subject string, report reporter) {
	client, err := newDuoClient(dc, nil)
	if err != nil {
		report(false, subject, "%v", err)
		return
	}
	defer client.Close()
	before := time.Now()
	duoTime, err := client.CheckTime(ctx)
	if err != nil {
		report(false, subject, "signed /auth/v2/check failed: %v", err)
		return
	}
	// Duo's time is whole seconds: compare with our clock halfway through
	// the call, truncated alike.
	ours := before.Add(time.Since(before) / 2).Truncate(time.Second)
	skew := duoTime.Sub(ours)
	if skew.Abs() > config.MaxDuoClockSkew {
		report(false, subject, "keys accepted, but this machine's clock is %s from Duo's (at most %s; Duo refuses requests beyond a few minutes): fix NTP",
			signed(skew), human.Duration(config.MaxDuoClockSkew))
		return
	}
	report(true, subject, "signed /auth/v2/check accepted; clock skew %s", signed(skew))
}

func signed(d time.Duration) string {
	if d < 0 {
		return "-" + human.Duration(-d)
	}
	return "+" + human.Duration(d)
}

func tlsSummary(st tls.ConnectionState) string {
	s := fmt.Sprintf("%s %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
	if len(st.PeerCertificates) > 0 {
		c := st.PeerCertificates[0]
		s += fmt.Sprintf(", certificate %q issued by %q, valid until %s", c.Subject.String(), c.Issuer.String(), c.NotAfter.UTC().Format(time.DateOnly))
	}
	return s
}
