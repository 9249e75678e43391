package config

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
)

func TestProxyProtocolAbsentByDefault(t *testing.T) {
	cfg, err := Parse([]byte(minimal), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if pp := cfg.Servers[0].ProxyProtocol; pp != nil {
		t.Fatalf("proxy_protocol %+v without the block, want nil (off)", pp)
	}
}

func TestProxyProtocolParsed(t *testing.T) {
	doc := withKey(t, minimal, "servers[0].proxy_protocol", map[string]any{
		"trusted": []any{"10.0.0.0/24", "192.0.2.7", "2001:db8::/32", "::ffff:198.51.100.1"},
	})
	cfg, err := Parse(doc, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	pp := cfg.Servers[0].ProxyProtocol
	if pp == nil {
		t.Fatal("proxy_protocol not decoded")
	}
	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("192.0.2.7/32"),
		netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("198.51.100.1/32"),
	}
	if !slices.Equal(pp.Prefixes(), want) {
		t.Errorf("prefixes %v, want %v", pp.Prefixes(), want)
	}
	if pp.HeaderTimeout != DefaultProxyHeaderTimeout {
		t.Errorf("header_timeout %s, want the default %s", pp.HeaderTimeout, DefaultProxyHeaderTimeout)
	}
}

func TestProxyProtocolProblems(t *testing.T) {
	const key = "servers[0].proxy_protocol"
	cases := []struct {
		name  string
		block any
		path  string // "" when valid
		kind  error
		msg   string
	}{
		{"one CIDR", map[string]any{"trusted": []any{"127.0.0.0/8"}}, "", nil, ""},
		{"timeout in range", map[string]any{"trusted": []any{"127.0.0.1"}, "header_timeout": "250ms"}, "", nil, ""},
		{"empty block", map[string]any{}, key + ".trusted", ErrRequired, ""},
		{"empty list", map[string]any{"trusted": []any{}}, key + ".trusted", ErrRequired, ""},
		{"not a CIDR", map[string]any{"trusted": []any{"10.0.0.0/24", "balancer.example.com"}}, key + ".trusted[1]", ErrInvalid,
			`"balancer.example.com" is not a CIDR (10.0.0.0/24) or an address`},
		{"bad mask", map[string]any{"trusted": []any{"10.0.0.0/33"}}, key + ".trusted[0]", ErrInvalid, ""},
		{"host bits", map[string]any{"trusted": []any{"10.0.0.5/24"}}, key + ".trusted[0]", ErrInvalid,
			`"10.0.0.5/24" has host bits set; did you mean 10.0.0.0/24?`},
		{"everyone v4", map[string]any{"trusted": []any{"0.0.0.0/0"}}, key + ".trusted[0]", ErrInvalid, ""},
		{"everyone v6", map[string]any{"trusted": []any{"::/0"}}, key + ".trusted[0]", ErrInvalid, ""},
		{"timeout too short", map[string]any{"trusted": []any{"127.0.0.1"}, "header_timeout": "10ms"}, key + ".header_timeout", ErrInvalid,
			"10ms is out of range; allowed 100ms to 1m"},
		{"unknown key", map[string]any{"trusted": []any{"127.0.0.1"}, "trust": []any{"127.0.0.1"}}, key + ".trust", ErrUnknownKey, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(withKey(t, minimal, key, c.block), noEnv)
			if c.path == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			p, ok := problemAt(t, err, c.path)
			if !ok {
				t.Fatalf("no problem at %s; got %v", c.path, err)
			}
			if c.msg != "" && p.Msg != c.msg {
				t.Errorf("%s: %q, want %q", c.path, p.Msg, c.msg)
			}
			if !errors.Is(p, c.kind) {
				t.Errorf("%s: %v does not wrap %v", c.path, p, c.kind)
			}
		})
	}
}
