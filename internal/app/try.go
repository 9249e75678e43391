package app

import (
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/spf13/cobra"
)

// newTryCommand is a small ldapwhoami/ldapsearch for machines without
// ldap-utils, so that the demo's tour works with only Go installed.
func newTryCommand() *cobra.Command {
	var url, dn, password, base, filter string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "try --url URL --dn DN --password PW [--base DN [--filter F] [ATTR...]]",
		Short: "Bind to an LDAP server and print who you are (like ldapwhoami), or search (like ldapsearch -LLL)",
		Long: `try binds with a simple bind and prints "dn:..." as ldapwhoami does. With --base
it searches the subtree instead and prints the entries as LDIF, as
ldapsearch -LLL does. On an LDAP error it exits with the result code
(49 for invalid credentials, as ldapwhoami does).`,
		RunE: func(c *cobra.Command, attrs []string) error {
			if url == "" {
				return usageError{errors.New("--url is required")}
			}
			if base == "" && (c.Flags().Changed("filter") || len(attrs) > 0) {
				return usageError{errors.New("--filter and attributes need --base")}
			}
			code, err := try(c.OutOrStdout(), c.ErrOrStderr(), url, dn, password, base, filter, attrs, timeout)
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
	return cmd
}

// try runs the bind and WhoAmI or search. It returns the LDAP result code
// of a refused operation (after printing it as the OpenLDAP tools do) or an
// error when the server could not be asked.
func try(out, errOut io.Writer, url, dn, password, base, filter string, attrs []string, timeout time.Duration) (int, error) {
	conn, err := ldap.DialURL(url, ldap.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}))
	if err != nil {
		return 0, fmt.Errorf("can't contact LDAP server %s: %w", url, err)
	}
	defer conn.Close()
	conn.SetTimeout(timeout)

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
