package config

import (
	"fmt"
	"net/netip"
	"time"
)

// ProxyProtocol makes a section behind a load balancer take each client's
// address from the PROXY protocol header (v1 or v2) the balancer sends
// first on every connection (README "Behind a load balancer"). Only the
// addresses in Trusted may send one; from them it is required.
type ProxyProtocol struct {
	// Trusted are the balancers' addresses, as CIDRs (10.0.0.0/24) or
	// single addresses (10.0.0.5).
	Trusted []string `mapstructure:"trusted"`
	// HeaderTimeout bounds how long a trusted source may take to send its
	// header once it connected; then the connection is closed.
	HeaderTimeout time.Duration `mapstructure:"header_timeout"`

	// prefixes is Trusted parsed by validation.
	prefixes []netip.Prefix
}

// Prefixes is Trusted as parsed by validation (nil before it).
func (pp *ProxyProtocol) Prefixes() []netip.Prefix { return pp.prefixes }

func (pp *ProxyProtocol) applyDefaults() {
	if pp != nil && pp.HeaderTimeout == 0 {
		pp.HeaderTimeout = DefaultProxyHeaderTimeout
	}
}

// validate checks the block of a section; nil (no block) is valid.
func (pp *ProxyProtocol) validate(p *Problems, path string) {
	if pp == nil {
		return
	}
	checkRange(p, path+".header_timeout", pp.HeaderTimeout, MinProxyHeaderTimeout, MaxProxyHeaderTimeout)
	if len(pp.Trusted) == 0 {
		p.add(path+".trusted", ErrRequired, "lists the load balancers' addresses (CIDRs) allowed to send PROXY headers; without it remove proxy_protocol")
		return
	}
	if len(pp.Trusted) > MaxProxyTrusted {
		p.add(path+".trusted", ErrInvalid, "%d entries; at most %d", len(pp.Trusted), MaxProxyTrusted)
		return
	}
	pp.prefixes = pp.prefixes[:0]
	for i, s := range pp.Trusted {
		key := fmt.Sprintf("%s.trusted[%d]", path, i)
		pfx, err := parseTrusted(s)
		if err != nil {
			p.add(key, ErrInvalid, "%v", err)
			continue
		}
		pp.prefixes = append(pp.prefixes, pfx)
	}
}

// parseTrusted reads one trusted entry: a CIDR without host bits, or one
// address. A prefix of length 0 (every address) is refused: whoever could
// connect could then claim to be any client.
func parseTrusted(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q: an address with a zone cannot be trusted", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR (10.0.0.0/24) or an address", s)
	}
	if pfx.Bits() == 0 {
		return netip.Prefix{}, fmt.Errorf("%q trusts every address: anyone could claim any client address; list the load balancers", s)
	}
	if m := pfx.Masked(); m != pfx {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set; did you mean %s?", s, m)
	}
	if pfx.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("%q is an IPv4-mapped IPv6 prefix; write the IPv4 CIDR", s)
	}
	return pfx, nil
}
