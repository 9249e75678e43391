package config

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// The checks of this file read what serve will read at start (CA bundles,
// certificate/key pairs, the auth log's place, the addresses to listen on),
// so that `ldapgate check` fails on everything serve would fail on, with
// the key that names it.

// checkCAFile proves that a ca_file key names a bundle CertPool accepts.
func checkCAFile(p *Problems, path, file string) {
	if file == "" {
		return
	}
	if _, err := CertPool(file); err != nil {
		p.add(path, ErrInvalid, "%v", err)
	}
}

// checkLogFile proves that a log file can be opened for appending where
// the opener creates missing directories (authlog.Open): the file, when it
// exists, is a regular file we may write; otherwise its nearest existing
// ancestor is a directory we may write. "" and "-" (stdout) need nothing.
func checkLogFile(p *Problems, path, file string) {
	if file == "" || file == "-" {
		return
	}
	if st, err := os.Stat(file); err == nil {
		if !st.Mode().IsRegular() {
			p.add(path, ErrInvalid, "%s is not a regular file", file)
		} else if err := syscall.Access(file, 2 /* W_OK */); err != nil {
			p.add(path, ErrInvalid, "%s is not writable: %v", file, err)
		}
		return
	} else if !errors.Is(err, fs.ErrNotExist) {
		p.add(path, ErrInvalid, "%v", err)
		return
	}
	for dir := filepath.Dir(file); ; dir = filepath.Dir(dir) {
		st, err := os.Stat(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist) && dir != filepath.Dir(dir):
			continue // created at start
		case err != nil:
			p.add(path, ErrInvalid, "%v", err)
		case !st.IsDir():
			p.add(path, ErrInvalid, "cannot create %s: %s is not a directory", file, dir)
		default:
			if err := syscall.Access(dir, 2|1 /* W_OK|X_OK */); err != nil {
				p.add(path, ErrInvalid, "cannot create %s: directory %s is not writable: %v", file, dir, err)
			}
		}
		return
	}
}

// listener is one address the program will listen on, with its key.
type listener struct{ path, addr string }

// checkListenCollisions refuses two listeners that cannot both bind: the
// same port on the same address, where a wildcard host ("", 0.0.0.0, ::)
// is every address and a name is the addresses it resolves to (localhost
// is 127.0.0.1 and ::1). Port 0 (the kernel picks one) never collides.
func checkListenCollisions(p *Problems, ls []listener) {
	type bound struct {
		listener
		port     int
		wildcard bool
		ips      []string
	}
	var seen []bound
	for _, l := range ls {
		host, portStr, err := net.SplitHostPort(l.addr)
		port, perr := strconv.Atoi(portStr)
		if err != nil || perr != nil || port == 0 {
			continue // checkListen reports a malformed address
		}
		b := bound{listener: l, port: port}
		b.wildcard, b.ips = listenIPs(host)
		for _, o := range seen {
			if o.port != b.port {
				continue
			}
			if b.wildcard || o.wildcard || slices.ContainsFunc(b.ips, func(ip string) bool { return slices.Contains(o.ips, ip) }) {
				p.add(l.path, ErrInvalid, "%q collides with %s %q: both would listen on port %d of the same address",
					l.addr, o.path, o.addr, port)
				break
			}
		}
		seen = append(seen, b)
	}
}

// listenIPs says which addresses a listen host binds: all of them for a
// wildcard, else the IPs it is or resolves to (the name itself when it does
// not resolve: the start fails on it then, and checkListen says why).
func listenIPs(host string) (wildcard bool, ips []string) {
	if host == "" || host == "localhost" {
		if host == "" {
			return true, nil
		}
		return false, []string{"127.0.0.1", "::1"}
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsUnspecified(), []string{ip.String()}
	}
	ctx, cancel := context.WithTimeout(context.Background(), listenLookupTimeout)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil || len(addrs) == 0 {
		return false, []string{host}
	}
	for _, a := range addrs {
		ips = append(ips, a.IP.String())
	}
	return false, ips
}

// listenLookupTimeout bounds resolving one listen host name during checks.
const listenLookupTimeout = 2 * time.Second

// caHint says how to make a PEM bundle of a file that is neither PEM nor DER.
func caHint(file string) string {
	return fmt.Sprintf("convert it with: openssl x509 -inform der -in %s -out %s.pem (or concatenate PEM certificates)", file, file)
}
