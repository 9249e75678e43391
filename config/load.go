package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
)

// EnvPrefix prefixes every environment variable ldapgate reads.
const EnvPrefix = "LDAPGATE"

// Load reads the YAML file at path, applies environment overrides and
// defaults, resolves secrets and validates the result. The returned error
// lists every problem found (see ValidationError).
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := Parse(data, os.LookupEnv)
	if err != nil {
		return nil, err
	}
	c.file = path
	return c, nil
}

// Parse is Load for configuration already in memory (tests, the demo's
// embedded file). lookupEnv is usually os.LookupEnv.
func Parse(data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	v := viper.NewWithOptions(
		viper.ExperimentalBindStruct(),
		viper.EnvKeyReplacer(strings.NewReplacer(".", "_")),
	)
	v.SetConfigType("yaml")
	v.SetEnvPrefix(EnvPrefix)
	v.AutomaticEnv()
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("parse config: %w", err)
	}
	var c Config
	var problems Problems
	if err := v.UnmarshalExact(&c, decodeHook(false)); err != nil {
		problems = decodeProblems(err)
		// Validate what did decode as well, so one run reports every
		// problem: unknown keys are ignored and bad durations read as unset
		// this time (validation skips keys that have a problem already). A
		// value of another type that cannot decode at all stops here.
		c = Config{}
		if err := v.Unmarshal(&c, decodeHook(true)); err != nil {
			return nil, problems.Err()
		}
	}
	c.applyDefaults()
	c.resolveSecrets(lookupEnv, &problems)
	c.validate(&problems)
	if err := problems.Err(); err != nil {
		return nil, err
	}
	return &c, nil
}

func decodeHook(lenient bool) viper.DecoderConfigOption {
	return viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(
		durationHook(lenient),
		mapstructure.StringToSliceHookFunc(","),
	))
}

// decodeProblems turns mapstructure's joined errors into key-path problems:
// "'servers[0]' has invalid keys: tiemout" becomes "servers[0].tiemout: unknown key".
// Paths are written as validation writes them (see keyPath).
func decodeProblems(err error) Problems {
	var p Problems
	var walk func(error)
	walk = func(e error) {
		if multi, ok := e.(interface{ Unwrap() []error }); ok {
			for _, child := range multi.Unwrap() {
				walk(child)
			}
			return
		}
		if de, ok := e.(*mapstructure.DecodeError); ok {
			inner := de.Unwrap().Error()
			if keys, ok := strings.CutPrefix(inner, "has invalid keys: "); ok {
				for _, k := range strings.Split(keys, ", ") {
					p.add(keyPath(joinPath(de.Name(), k)), ErrUnknownKey, "unknown key")
				}
				return
			}
			p.add(keyPath(de.Name()), ErrInvalid, "%s", inner)
			return
		}
		if next := errors.Unwrap(e); next != nil {
			walk(next)
			return
		}
		p.add("", ErrInvalid, "%s", e.Error())
	}
	walk(err)
	return p
}

// directoryKey is how mapstructure names a value of the directories map.
var directoryKey = regexp.MustCompile(`^directories\[([^\]]*)\]`)

// keyPath turns mapstructure's directories[corp].timeout into the
// directories.corp.timeout that the file, validation and the README use.
// (List elements stay servers[0]; directories is Config's one map.)
func keyPath(name string) string {
	return directoryKey.ReplaceAllString(name, "directories.$1")
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// EnvName is the environment variable that overrides a secret of a named
// directory or server: EnvName("servers", "vpn", "duo_secret_key") is
// LDAPGATE_SERVERS_VPN_DUO_SECRET_KEY.
func EnvName(parts ...string) string {
	var b strings.Builder
	b.WriteString(EnvPrefix)
	for _, part := range parts {
		b.WriteByte('_')
		for _, r := range strings.ToUpper(part) {
			if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
				b.WriteRune(r)
			} else {
				b.WriteByte('_')
			}
		}
	}
	return b.String()
}

// resolveSecrets fills secrets from the environment (which wins) or from
// *_file keys. A secret given both inline and as a file is an error: two
// sources invite the wrong one to be rotated.
func (c *Config) resolveSecrets(lookupEnv func(string) (string, bool), p *Problems) {
	for name, d := range c.Directories {
		if d == nil {
			continue
		}
		path := "directories." + name
		c.resolveSecret(&d.BindPassword, d.BindPasswordFile, EnvName("directories", name, "bind_password"),
			path+".bind_password", lookupEnv, p)
	}
	c.resolveSecret(&c.State.Password, c.State.PasswordFile, EnvName("state", "password"), "state.password", lookupEnv, p)
	for i, s := range c.Servers {
		if s == nil {
			continue
		}
		path := fmt.Sprintf("servers[%d].duo", i)
		c.resolveSecret(&s.Duo.SecretKey, s.Duo.SecretKeyFile, EnvName("servers", s.Name, "duo_secret_key"),
			path+".secret_key", lookupEnv, p)
	}
}

func (c *Config) resolveSecret(dst *Secret, file, env, path string, lookupEnv func(string) (string, bool), p *Problems) {
	if v, ok := lookupEnv(env); ok && v != "" {
		*dst = Secret(v)
		return
	}
	if file == "" {
		if *dst != "" {
			c.inline = append(c.inline, path)
		}
		return
	}
	if *dst != "" {
		p.add(path, ErrInvalid, "set both inline and in %s_file; choose one", path[strings.LastIndex(path, ".")+1:])
		return
	}
	data, err := os.ReadFile(file)
	if err != nil {
		// The error names the file, never its content.
		p.add(path+"_file", ErrInvalid, "%s", err.Error())
		return
	}
	v := strings.TrimRight(string(data), "\r\n")
	if v == "" {
		p.add(path+"_file", ErrRequired, "file is empty")
		return
	}
	*dst = Secret(v)
}

// AdminSocket reads only admin.socket from the file at path. The CLI uses it
// to find a running ldapgate without needing the secrets a full Load
// validates (they may live only in the service's environment).
func AdminSocket(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read config: %w", err)
	}
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return "", fmt.Errorf("parse config: %w", err)
	}
	socket := v.GetString("admin.socket")
	if socket == "" {
		return "", fmt.Errorf("%s sets no admin.socket: the running ldapgate has no control socket", path)
	}
	return socket, nil
}
