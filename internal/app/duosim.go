package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ldapgate/ldapgate/demo"
	"github.com/ldapgate/ldapgate/duosim"
)

// duoSimFlags are the flags of `ldapgate duo-sim`.
type duoSimFlags struct {
	listen, control, usersFile, ikey, skey, caOut string
	hostnames                                     []string
	allowRemoteControl                            bool
	pushDelay                                     time.Duration
}

// newDuoSimCommand runs the project's Duo Auth API simulator on its own, so
// administrators can point a staging ldapgate at it without a Duo account.
func newDuoSimCommand() *cobra.Command {
	var f duoSimFlags
	cmd := &cobra.Command{
		Use:   "duo-sim [--listen ADDR] [--control ADDR] [--users FILE]",
		Short: "Run the Duo Auth API simulator (NOT Duo: for demos and staging only)",
		Long: `duo-sim serves the Duo Auth API v2 over HTTPS with a throw-away CA, checks
request signatures as Duo does, and answers for the users in --users:

  users:
    - name: alice
      behavior: approve        # approve | deny | passcode_only | not_enrolled | bypass | locked_out
      passcodes: ["123456"]    # accepted every time

Unknown usernames preauth as "enroll". Without --users the demo's sample
users are loaded. It prints the api_host, keys and CA file to give ldapgate
(duo.api_host, integration_key, secret_key, ca_file). A new CA is made at
every start.

The control API (plain HTTP, unauthenticated, so loopback only unless
--control-allow-remote) switches faults: curl -X PUT -d refuse URL/fault
(refuse, hang, server_error, unauthorized, bad_cert, rate_limit, auth_hang,
auth_error, check_hang, preauth_error, slow; none clears), and serves /calls, /requests, /users, /ca.pem.`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return runDuoSim(c.Context(), c.OutOrStdout(), c.ErrOrStderr(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "127.0.0.1:8443", "address of the Auth API (HTTPS)")
	fl.StringVar(&f.control, "control", "127.0.0.1:8444", `address of the control API (plain HTTP); "" disables it`)
	fl.BoolVar(&f.allowRemoteControl, "control-allow-remote", false, "allow a --control address that is not loopback (anyone who reaches it can change the simulator)")
	fl.StringVar(&f.usersFile, "users", "", "YAML or JSON users file (default: the demo's sample users)")
	fl.StringVar(&f.ikey, "ikey", "", "integration key requests must carry (default: random)")
	fl.StringVar(&f.skey, "skey", "", "secret key requests must be signed with (default: random)")
	fl.StringVar(&f.caOut, "ca-out", "", "write the CA certificate (PEM) here (default: a temporary file, removed on exit)")
	fl.StringSliceVar(&f.hostnames, "hostname", nil, "extra DNS name or IP for the certificate, when clients reach the simulator by another name (repeatable)")
	fl.DurationVar(&f.pushDelay, "push-delay", 0, "how long a simulated push or phone call takes to be answered")
	return cmd
}

func runDuoSim(ctx context.Context, out, errOut io.Writer, f duoSimFlags) (err error) {
	if f.control != "" && !f.allowRemoteControl {
		if err := requireLoopback(f.control); err != nil {
			return usageError{fmt.Errorf("--control %s: %w; the control API is unauthenticated (use --control-allow-remote if you mean it)", f.control, err)}
		}
	}
	users, usersFrom := demo.SampleDuoUsers(), "the demo's sample users"
	if f.usersFile != "" {
		if users, err = duosim.LoadUsers(f.usersFile); err != nil {
			return err
		}
		usersFrom = f.usersFile
	}
	log := slog.New(slog.NewTextHandler(errOut, nil))
	sim, err := duosim.New(duosim.Options{
		Addr: f.listen, IntegrationKey: f.ikey, SecretKey: f.skey, Users: users,
		Hostnames: f.hostnames, PushDelay: f.pushDelay, Logger: log,
	})
	if err != nil {
		return err
	}
	defer sim.Close()

	caFile := f.caOut
	if caFile == "" {
		tmp, err := os.CreateTemp("", "ldapgate-duo-sim-ca-*.pem")
		if err != nil {
			return err
		}
		caFile = tmp.Name()
		tmp.Close()
		defer os.Remove(caFile)
	}
	if err := os.WriteFile(caFile, sim.CAPEM(), 0o644); err != nil {
		return fmt.Errorf("--ca-out: %w", err)
	}

	controlURL := "(disabled)"
	if f.control != "" {
		ln, err := net.Listen("tcp", f.control)
		if err != nil {
			return fmt.Errorf("--control: %w", err)
		}
		srv := &http.Server{Handler: sim.ControlHandler(), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		controlURL = "http://" + ln.Addr().String()
	}

	apiHost := sim.APIHost()
	if len(f.hostnames) > 0 {
		_, port, _ := net.SplitHostPort(apiHost)
		apiHost = net.JoinHostPort(f.hostnames[0], port)
	}
	banner := strings.Repeat("!", 78)
	fmt.Fprintf(out, `%[1]s
!!  DUO AUTH API SIMULATOR. THIS IS NOT DUO.
!!  It authenticates nobody: every user's answer is scripted (--users).
!!  For demos and staging only; never point production at it.
%[1]s

Give ldapgate these (a server section's duo: block):

    duo:
      api_host: %[2]s
      integration_key: %[3]s
      secret_key: %[4]s
      ca_file: %[5]s

control API: %[6]s   (curl -X PUT -d refuse %[6]s/fault; -d none clears)
users:       %[7]d from %[8]s
Stop with Ctrl-C.
`, banner, apiHost, sim.IntegrationKey(), sim.SecretKey(), caFile, controlURL, len(users), usersFrom)

	<-ctx.Done()
	return nil
}

// requireLoopback accepts host:port addresses whose host is a loopback IP or
// "localhost".
func requireLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return errors.New("not a loopback address")
}
