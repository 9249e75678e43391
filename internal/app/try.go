package app

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	neturl "net/url"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/spf13/cobra"

	"github.com/ldapgate/ldapgate/config"
)

// newTryCommand is a small ldapwhoami/ldapsearch for machines without
// ldap-utils, so that the demo's tour works with only Go installed.
func newTryCommand() *cobra.Command {
	var url, dn, password, base, filter, caFile string
	var timeout time.Duration
	var startTLS, ldaps bool
	cmd := &cobra.Command{
		Use:   "try --url URL --dn DN --password PW [--starttls | --ldaps] [--ca-file FILE] [--base DN [--filter F] [ATTR...]]",
		Short: "Bind to an LDAP server and print who you are (like ldapwhoami), or search (like ldapsearch -LLL)",
		Long: `try binds with a simple bind and prints "dn:..." as ldapwhoami does. With --base
it searches the subtree instead and prints the entries as LDIF, as
ldapsearch -LLL does. On an LDAP error it exits with the result code
(49 for invalid credentials, as ldapwhoami does).

--ldaps (or an ldaps:// URL) speaks TLS from the first byte, --starttls
upgrades an ldap:// connection before the bind (like ldapwhoami -ZZ). The
server's certificate is always verified, against --ca-file or the system
roots, for the URL's host.`,
		RunE: func(c *cobra.Command, attrs []string) error {
			if url == "" {
				return usageError{errors.New("--url is required")}
			}
			if base == "" && (c.Flags().Changed("filter") || len(attrs) > 0) {
				return usageError{errors.New("--filter and attributes need --base")}
			}
			tc, err := tryTLS(url, startTLS, ldaps, caFile)
			if err != nil {
				return err
			}
			code, err := try(c.OutOrStdout(), c.ErrOrStderr(), tc, dn, password, base, filter, attrs, timeout)
			if err != nil {
				return err
			}
			if code != 0 {
				// Like ldapwhoami, the exit status is the LDAP result code.
				return exitStatus(code)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&url, "url", "H", "", "LDAP URL, e.g. ldap://127.0.0.1:10390")
	f.StringVarP(&dn, "dn", "D", "", "bind DN (or any bind name the server accepts)")
	f.StringVarP(&password, "password", "w", "", "password (with ldapgate: password,passcode also works)")
	f.StringVarP(&base, "base", "b", "", "search this subtree after binding instead of asking who am I")
	f.StringVar(&filter, "filter", "(objectClass=*)", "search filter")
	f.DurationVar(&timeout, "timeout", 2*time.Minute, "how long to wait for an answer (a Duo push can take a minute)")
	f.BoolVarP(&startTLS, "starttls", "Z", false, "upgrade the ldap:// connection with StartTLS before binding")
	f.BoolVar(&ldaps, "ldaps", false, "speak TLS from the first byte (LDAPS), as an ldaps:// URL does")
	f.StringVar(&caFile, "ca-file", "", "PEM roots to verify the server's certificate (default: the system roots)")
	return cmd
}

// try runs the bind and WhoAmI or search. It returns the LDAP result code
// of a refused operation (after printing it as the OpenLDAP tools do) or an
// error when the server could not be asked.
func try(out, errOut io.Writer, tc tryConn, dn, password, base, filter string, attrs []string, timeout time.Duration) (int, error) {
	url := tc.url
	opts := []ldap.DialOpt{ldap.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second})}
	if tc.tls != nil {
		opts = append(opts, ldap.DialWithTLSConfig(tc.tls))
	}
	conn, err := ldap.DialURL(url, opts...)
	if err != nil {
		return 0, fmt.Errorf("can't contact LDAP server %s: %w", url, err)
	}
	defer conn.Close()
	conn.SetTimeout(timeout)
	if tc.startTLS {
		if err := conn.StartTLS(tc.tls); err != nil {
			return 0, fmt.Errorf("ldap_start_tls %s: %w", url, err)
		}
	}

	refused := func(op string, err error) (int, error) {
		var le *ldap.Error
		if !errors.As(err, &le) || le.ResultCode == ldap.ErrorNetwork {
			return 0, fmt.Errorf("%s: %w", op, err)
		}
		fmt.Fprintf(errOut, "%s: %s (%d)\n", op, ldap.LDAPResultCodeMap[le.ResultCode], le.ResultCode)
		if le.Err != nil && le.Err.Error() != "" {
			fmt.Fprintf(errOut, "\tadditional info: %s\n", le.Err)
		}
		return int(le.ResultCode), nil
	}
	if _, err := conn.SimpleBind(&ldap.SimpleBindRequest{Username: dn, Password: password, AllowEmptyPassword: true}); err != nil {
		return refused("ldap_bind", err)
	}
	if base == "" {
		res, err := conn.WhoAmI(nil)
		if err != nil {
			return refused("ldap_extended_operation", err)
		}
		if res.AuthzID == "" {
			res.AuthzID = "anonymous"
		}
		_, err = fmt.Fprintln(out, res.AuthzID)
		return 0, err
	}
	res, err := conn.Search(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, filter, attrs, nil))
	if res != nil {
		for _, e := range res.Entries {
			fmt.Fprintf(out, "dn: %s\n", e.DN)
			for _, a := range e.Attributes {
				for _, v := range a.Values {
					fmt.Fprintf(out, "%s: %s\n", a.Name, v)
				}
			}
			fmt.Fprintln(out)
		}
	}
	if err != nil {
		return refused("ldap_search", err)
	}
	return 0, nil
}

// tryConn is how try reaches the server.
type tryConn struct {
	url      string
	tls      *tls.Config // nil: plaintext
	startTLS bool
}

// tryTLS works out the connection from the flags: --ldaps turns an
// ldap:// URL into ldaps://, --starttls needs ldap://, and either (or an
// ldaps:// URL) verifies the server against caFile or the system roots.
func tryTLS(rawURL string, startTLS, ldaps bool, caFile string) (tryConn, error) {
	u, err := neturl.Parse(rawURL)
	if !startTLS && !ldaps && caFile == "" && (err != nil || u.Scheme != "ldaps") {
		return tryConn{url: rawURL}, nil // plaintext, as given (go-ldap reads the URL)
	}
	if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "" {
		return tryConn{}, usageError{fmt.Errorf("--url %q: TLS needs ldap://host:port or ldaps://host:port", rawURL)}
	}
	switch {
	case startTLS && ldaps:
		return tryConn{}, usageError{errors.New("--starttls and --ldaps exclude each other")}
	case startTLS && u.Scheme == "ldaps":
		return tryConn{}, usageError{errors.New("--starttls needs an ldap:// URL; an ldaps:// one is TLS already")}
	case ldaps:
		u.Scheme = "ldaps"
	}
	tc := tryConn{url: u.String(), startTLS: startTLS}
	if u.Scheme == "ldaps" || startTLS {
		tc.tls = &tls.Config{ServerName: u.Hostname(), MinVersion: config.MinTLSVersion}
		if caFile != "" {
			if tc.tls.RootCAs, err = config.CertPool(caFile); err != nil {
				return tryConn{}, fmt.Errorf("--ca-file: %w", err)
			}
		}
	} else if caFile != "" {
		return tryConn{}, usageError{errors.New("--ca-file needs --starttls, --ldaps or an ldaps:// URL")}
	}
	return tc, nil
}
