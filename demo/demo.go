// Package demo runs `ldapgate demo`: a sample directory (internal/demodir),
// the Duo Auth API simulator (duosim) and the real proxy with two server
// sections, all in one process on loopback, and prints a tour of
// copy-pasteable commands that shows each row of the README's failmode
// table happen.
//
// Nothing in it is for production: the directory's passwords are public and
// the Duo simulator authenticates nobody.
package demo

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"text/template"
	"time"

	"github.com/ldapgate/ldapgate/config"
	"github.com/ldapgate/ldapgate/duosim"
	"github.com/ldapgate/ldapgate/internal/demodir"
	"github.com/ldapgate/ldapgate/internal/sampledata"
)

// Defaults of Options.
const (
	DefaultListen   = "127.0.0.1"
	DefaultBasePort = 10389
)

// Options configures Run. The demo listens on six consecutive ports from
// BasePort; see Ports.
type Options struct {
	// Listen is the loopback host every part listens on; default 127.0.0.1.
	Listen string
	// BasePort is the first of the six ports; default 10389.
	BasePort int
	// Out receives the tour; nil discards it.
	Out io.Writer
	// Log receives the simulator's and the demo's own messages; nil discards.
	Log *slog.Logger
	// Self is how the reader runs ldapgate (os.Args[0]); default "ldapgate".
	Self string
	// Client chooses the LDAP client the tour's lines use; default
	// DefaultClient().
	Client Client
	// ReadyTimeout bounds the wait for /readyz before the tour is printed
	// anyway, with a warning; default 20s.
	ReadyTimeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.Listen == "" {
		o.Listen = DefaultListen
	}
	if o.BasePort == 0 {
		o.BasePort = DefaultBasePort
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Self == "" {
		o.Self = "ldapgate"
	}
	if o.Client == "" {
		o.Client = DefaultClient()
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 20 * time.Second
	}
	return o
}

// Ports are the demo's listeners, BasePort and the five after it.
type Ports struct {
	Directory, Secure, Safe, Health, DuoAPI, DuoControl int
}

// Ports returns where each part listens.
func (o Options) Ports() Ports {
	b := o.withDefaults().BasePort
	return Ports{Directory: b, Secure: b + 1, Safe: b + 2, Health: b + 3, DuoAPI: b + 4, DuoControl: b + 5}
}

func (o Options) addr(port int) string {
	return net.JoinHostPort(o.withDefaults().Listen, strconv.Itoa(port))
}

// Section names of the demo's configuration.
const (
	SecureSection = "vpn"
	SafeSection   = "wiki"
)

//go:embed demo.yaml
var configTemplate string

// configValues fills demo.yaml.
type configValues struct {
	AuthLog, HealthAddr, AdminSocket               string
	DirectoryURL, LookupDN, LookupPassword, BaseDN string
	SecureAddr, SafeAddr, AdminsDN, AppDN          string
	DuoAPIHost, DuoIKey, DuoSKey, DuoCAFile        string
}

// renderConfig returns demo.yaml filled in with v.
func renderConfig(v configValues) ([]byte, error) {
	t, err := template.New("demo.yaml").Option("missingkey=error").Funcs(template.FuncMap{
		// JSON strings are YAML double-quoted scalars.
		"q": func(s string) (string, error) {
			b, err := json.Marshal(s)
			return string(b), err
		},
	}).Parse(configTemplate)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// SampleDuoUsers are the sample people as simulator users: username = uid,
// with each person's Duo behaviour and passcodes.
func SampleDuoUsers() []duosim.User {
	users := make([]duosim.User, 0, len(sampledata.People))
	for _, p := range sampledata.People {
		users = append(users, duosim.User{Name: p.UID, Behavior: duosim.Behavior(p.DuoBehavior), Passcodes: p.Passcodes})
	}
	return users
}

// Run starts the directory, the Duo simulator with its control API and, via
// serve, the proxy; prints the tour once the proxy is ready; and stops
// everything when ctx is cancelled. serve is the program's serve with its
// logger bound; it must return when its context is cancelled. Run returns
// serve's error, or nil after a clean stop.
func Run(ctx context.Context, opts Options, serve func(context.Context, *config.Config) error) (err error) {
	opts = opts.withDefaults()
	if !isLoopback(opts.Listen) {
		// The simulator's control API and the directory's public passwords
		// are for this machine only.
		return fmt.Errorf("demo: --listen %s: the demo listens on loopback only (127.0.0.1, ::1 or localhost)", opts.Listen)
	}
	ports := opts.Ports()
	for _, p := range []int{ports.Directory, ports.Secure, ports.Safe, ports.Health, ports.DuoAPI, ports.DuoControl} {
		if err := checkFree(opts.addr(p)); err != nil {
			return fmt.Errorf("demo: %w (another demo running? choose other ports with --base-port)", err)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	tmp, err := os.MkdirTemp("", "ldapgate-demo-")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer os.RemoveAll(tmp)

	dir, err := demodir.Start(ctx, opts.addr(ports.Directory))
	if err != nil {
		return fmt.Errorf("demo: directory: %w", err)
	}
	defer dir.Stop()

	sim, err := duosim.New(duosim.Options{Addr: opts.addr(ports.DuoAPI), Users: SampleDuoUsers(), Logger: opts.Log})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer sim.Close()
	control, err := serveControl(ctx, opts.addr(ports.DuoControl), sim)
	if err != nil {
		return fmt.Errorf("demo: simulator control: %w", err)
	}
	defer control.Close()

	caFile := filepath.Join(tmp, "duo-simulator-ca.pem")
	if err := os.WriteFile(caFile, sim.CAPEM(), 0o600); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	lookup, _ := sampledata.LookupService("ldapgate")
	values := configValues{
		AuthLog:        filepath.Join(tmp, "auth.log"),
		HealthAddr:     opts.addr(ports.Health),
		AdminSocket:    filepath.Join(tmp, "admin.sock"),
		DirectoryURL:   dir.URL(),
		LookupDN:       lookup.DN(),
		LookupPassword: lookup.Password,
		BaseDN:         sampledata.BaseDN,
		SecureAddr:     opts.addr(ports.Secure),
		SafeAddr:       opts.addr(ports.Safe),
		AdminsDN:       sampledata.GroupDN(sampledata.AdminGroup),
		AppDN:          sampledata.ServiceDN("app"),
		DuoAPIHost:     sim.APIHost(),
		DuoIKey:        sim.IntegrationKey(),
		DuoSKey:        sim.SecretKey(),
		DuoCAFile:      caFile,
	}
	data, err := renderConfig(values)
	if err != nil {
		return fmt.Errorf("demo: config template: %w", err)
	}
	configFile := filepath.Join(tmp, "config.yaml")
	if err := os.WriteFile(configFile, data, 0o600); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	// Secrets come from the file alone: an LDAPGATE_..._SECRET_KEY meant for
	// a real deployment must not leak into the demo.
	cfg, err := config.Parse(data, func(string) (string, bool) { return "", false })
	if err != nil {
		return fmt.Errorf("demo: config: %w", err)
	}

	served := make(chan error, 1)
	go func() { served <- serve(ctx, cfg) }()
	defer func() {
		cancel()
		if serr := <-served; err == nil {
			err = serr
		}
	}()

	for _, a := range []string{values.SecureAddr, values.SafeAddr} {
		if err := waitListening(ctx, a, served); err != nil {
			return err
		}
	}
	if err := waitReady(ctx, "http://"+values.HealthAddr+"/readyz", opts.ReadyTimeout, served); err != nil {
		if ctx.Err() != nil || errors.Is(err, errServeEnded) {
			return err
		}
		opts.Log.Warn("demo: ldapgate is not ready yet; the first lines of the tour may fail", "err", err)
	}
	t := newTour(opts, values.AuthLog, configFile, values.AdminSocket)
	if err := t.write(opts.Out); err != nil {
		return err
	}

	select {
	case <-ctx.Done():
		return nil
	case err := <-served:
		served <- err // for the deferred wait
		if err == nil {
			err = errors.New("ldapgate stopped by itself")
		}
		return err
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func checkFree(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return ln.Close()
}

// serveControl serves the simulator's control API over plain HTTP.
func serveControl(ctx context.Context, addr string, sim *duosim.Sim) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: sim.ControlHandler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	context.AfterFunc(ctx, func() { _ = srv.Close() })
	return srv, nil
}

var errServeEnded = errors.New("ldapgate stopped")

func waitListening(ctx context.Context, addr string, served chan error) error {
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case err := <-served:
			served <- err
			return fmt.Errorf("%w before listening on %s: %v", errServeEnded, addr, err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitReady polls url until it answers 200, for at most d.
func waitReady(ctx context.Context, url string, d time.Duration, served chan error) error {
	deadline := time.Now().Add(d)
	client := &http.Client{Timeout: time.Second}
	last := "no answer"
	for {
		resp, err := client.Get(url)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%s: %s", resp.Status, bytes.TrimSpace(body))
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %s", url, d, last)
		}
		select {
		case err := <-served:
			served <- err
			return fmt.Errorf("%w: %v", errServeEnded, err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
