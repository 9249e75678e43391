package importer

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strconv"

	"gopkg.in/yaml.v3"
)

// output is the generated file, in the order README documents its keys.
type output struct {
	Log         *outLog                  `yaml:"log,omitempty"`
	Directories map[string]*outDirectory `yaml:"directories"`
	Servers     []*outServer             `yaml:"servers"`
}

type outLog struct {
	Level string `yaml:"level,omitempty"`
}

type outDirectory struct {
	URLs              []string `yaml:"urls"`
	StartTLS          bool     `yaml:"start_tls,omitempty"`
	CAFile            string   `yaml:"ca_file,omitempty"`
	Timeout           string   `yaml:"timeout,omitempty"`
	BindDN            string   `yaml:"bind_dn,omitempty"`
	BindPassword      string   `yaml:"bind_password,omitempty"`
	BindPasswordFile  string   `yaml:"bind_password_file,omitempty"`
	BaseDN            string   `yaml:"base_dn,omitempty"`
	UsernameAttribute string   `yaml:"username_attribute,omitempty"`
	UserFilter        string   `yaml:"user_filter,omitempty"`
}

type outServer struct {
	Name              string   `yaml:"name"`
	Listen            string   `yaml:"listen,omitempty"`
	LDAPSListen       string   `yaml:"ldaps_listen,omitempty"`
	Directory         string   `yaml:"directory,omitempty"`
	TLS               *outTLS  `yaml:"tls,omitempty"`
	Duo               outDuo   `yaml:"duo"`
	Failmode          string   `yaml:"failmode,omitempty"`
	ExemptPrimaryBind bool     `yaml:"exempt_primary_bind"`
	ExemptDNs         []string `yaml:"exempt_dns,omitempty"`
	Factor            string   `yaml:"factor,omitempty"`
	PasscodeDelimiter *string  `yaml:"passcode_delimiter,omitempty"`
	IdleTimeout       string   `yaml:"idle_timeout,omitempty"`
}

type outTLS struct {
	CertFile   string `yaml:"cert_file,omitempty"`
	KeyFile    string `yaml:"key_file,omitempty"`
	MinVersion string `yaml:"min_version,omitempty"`
}

type outDuo struct {
	APIHost        string `yaml:"api_host,omitempty"`
	IntegrationKey string `yaml:"integration_key,omitempty"`
	SecretKey      string `yaml:"secret_key,omitempty"`
	SecretKeyFile  string `yaml:"secret_key_file,omitempty"`
	Timeout        string `yaml:"timeout,omitempty"`
}

// marshal writes the output as YAML, each key that came from authproxy.cfg
// commented with the key it came from.
func (c *converter) marshal() ([]byte, error) {
	var doc yaml.Node
	if err := doc.Encode(&c.out); err != nil {
		return nil, err
	}
	c.annotate(&doc, "")
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# Imported from %s by `ldapgate import`.\n", filepath.Base(c.opts.Source))
	buf.WriteString("# Read the report it printed (what was not mapped, what differs) before using it.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// annotate walks the document, the key path of each node as config names
// it (directories.corp.urls[0], servers[1].duo.timeout), and comments the
// keys and list items recorded in prov.
func (c *converter) annotate(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, child := range n.Content {
			c.annotate(child, path)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, value := n.Content[i], n.Content[i+1]
			p := key.Value
			if path != "" {
				p = path + "." + key.Value
			}
			// A list's items carry their own comments, and a section's
			// name is its item's.
			if src, ok := c.prov[p]; ok && value.Kind != yaml.SequenceNode && key.Value != "name" {
				if value.Kind == yaml.ScalarNode {
					value.LineComment = src
				} else {
					key.LineComment = src
				}
			}
			c.annotate(value, p)
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			p := path + "[" + strconv.Itoa(i) + "]"
			if src, ok := c.prov[p]; ok {
				if item.Kind == yaml.ScalarNode {
					item.LineComment = src
				} else {
					item.HeadComment = src
				}
			}
			c.annotate(item, p)
		}
	}
}
