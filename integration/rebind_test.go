package integration

import (
	"net"
	"strings"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// TestRefusedBindResetsIdentity: RFC 4511 §4.2.1 says every bind request,
// even one that fails, resets the connection's authentication. After a
// successful bind as alice, an LDAPv2 bind or a bind with an unknown
// authentication choice is refused, and the search that follows must not
// run as alice. go-ldap can send neither bind, so the test speaks BER on a
// raw connection.
func TestRefusedBindResetsIdentity(t *testing.T) {
	e := start(t, []section{secureSection})
	alice := person(t, "alice")

	tests := []struct {
		name string
		bind func(messageID int64) *ber.Packet
	}{
		{"ldapv2 bind", func(id int64) *ber.Packet {
			return rawBind(id, 2, "cn=anyone", ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, "whatever", "simple"))
		}},
		{"unknown authentication choice", func(id int64) *ber.Packet {
			// [5] is no AuthenticationChoice of RFC 4511
			return rawBind(id, 3, alice.DN(), ber.NewString(ber.ClassContext, ber.TypePrimitive, 5, alice.Password, "unknown"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, e.addr["secure"])

			c.send(rawBind(1, 3, alice.DN(), ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, alice.Password, "simple")))
			if got := c.result(1, ldap.ApplicationBindResponse); got.code != 0 {
				t.Fatalf("alice's bind: code %d (%s), want success", got.code, got.diag)
			}
			// the connection does run as alice
			c.send(rawSearch(t, 2, alice.DN()))
			if got := c.result(2, ldap.ApplicationSearchResultDone); got.code != 0 || got.entries != 1 {
				t.Fatalf("search as alice: code %d (%s), %d entries; want success with her entry", got.code, got.diag, got.entries)
			}

			c.send(tt.bind(3))
			if got := c.result(3, ldap.ApplicationBindResponse); got.code == 0 {
				t.Fatalf("the %s succeeded", tt.name)
			}

			c.send(rawSearch(t, 4, alice.DN()))
			got := c.result(4, ldap.ApplicationSearchResultDone)
			if got.code != ldap.LDAPResultInsufficientAccessRights || !strings.Contains(got.diag, "bind first") || got.entries != 0 {
				t.Fatalf("search after the refused bind: code %d (%q), %d entries; want insufficientAccessRights, \"bind first\", none",
					got.code, got.diag, got.entries)
			}
		})
	}
}

// rawConn is a client connection that sends hand-made PDUs.
type rawConn struct {
	t *testing.T
	net.Conn
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, Conn: c}
}

func (c *rawConn) send(p *ber.Packet) {
	c.t.Helper()
	if err := c.SetWriteDeadline(time.Now().Add(5 * time.Second)); err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.Write(p.Bytes()); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// rawResult is the answer to one request.
type rawResult struct {
	code    int
	diag    string
	entries int // search entries before the SearchResultDone
}

// result reads PDUs until the response of type op to messageID, counting
// search entries on the way; a bind may wait for a Duo push.
func (c *rawConn) result(messageID int64, op ber.Tag) rawResult {
	c.t.Helper()
	var res rawResult
	deadline := time.Now().Add(3 * pushTimeout)
	for range 1000 { // bounded: a sample search has a handful of entries
		if err := c.SetReadDeadline(deadline); err != nil {
			c.t.Fatal(err)
		}
		p, err := ber.ReadPacket(c)
		if err != nil {
			c.t.Fatalf("reading the response to %d: %v", messageID, err)
		}
		if len(p.Children) < 2 {
			c.t.Fatalf("not an LDAPMessage: %d children", len(p.Children))
		}
		id, _ := p.Children[0].Value.(int64)
		resp := p.Children[1]
		switch {
		case id == 0:
			c.t.Fatalf("notice of disconnection: %s", describe(resp))
		case id != messageID:
			c.t.Fatalf("response to %d while waiting for %d", id, messageID)
		case resp.Tag == ldap.ApplicationSearchResultEntry || resp.Tag == ldap.ApplicationSearchResultReference:
			res.entries++
			continue
		case resp.Tag != op:
			c.t.Fatalf("response type %d to %d, want %d", resp.Tag, messageID, op)
		}
		if len(resp.Children) < 3 {
			c.t.Fatalf("response to %d has no LDAPResult", messageID)
		}
		code, err := ber.ParseInt64(resp.Children[0].Data.Bytes())
		if err != nil {
			c.t.Fatalf("result code: %v", err)
		}
		res.code, res.diag = int(code), resp.Children[2].Data.String()
		return res
	}
	c.t.Fatalf("no response to %d", messageID)
	return res
}

func describe(resp *ber.Packet) string {
	if len(resp.Children) < 3 {
		return "malformed"
	}
	return resp.Children[2].Data.String()
}

// rawBind is a BindRequest with any version and authentication choice.
func rawBind(messageID, version int64, name string, auth *ber.Packet) *ber.Packet {
	env := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Request")
	env.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, messageID, "MessageID"))
	req := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationBindRequest, nil, "Bind Request")
	req.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, version, "Version"))
	req.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, name, "Name"))
	req.AppendChild(auth)
	env.AppendChild(req)
	return env
}

// rawSearch is a base-object search of dn for every entry.
func rawSearch(t *testing.T, messageID int64, dn string) *ber.Packet {
	t.Helper()
	env := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Request")
	env.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, messageID, "MessageID"))
	req := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationSearchRequest, nil, "Search Request")
	req.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, dn, "Base DN"))
	req.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, int64(ldap.ScopeBaseObject), "Scope"))
	req.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, int64(ldap.NeverDerefAliases), "Deref Aliases"))
	req.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 0, "Size Limit"))
	req.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 0, "Time Limit"))
	req.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, false, "Types Only"))
	filter, err := ldap.CompileFilter("(objectClass=*)")
	if err != nil {
		t.Fatal(err)
	}
	req.AppendChild(filter)
	req.AppendChild(ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "Attributes"))
	env.AppendChild(req)
	return env
}
