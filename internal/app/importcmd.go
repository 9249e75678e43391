package app

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/ldapgate/ldapgate/importer"
)

func newImportCommand() *cobra.Command {
	var secretsDir string
	var withSecrets bool
	cmd := &cobra.Command{
		Use:   "import [--secrets-dir DIR | --with-secrets] authproxy.cfg > ldapgate.yaml",
		Short: "Convert a Duo Authentication Proxy configuration (authproxy.cfg) into ldapgate's",
		Long: `Convert the [ldap_server_auto*] sections of a Duo Authentication Proxy
configuration, and the [ad_client*] sections they use, into an ldapgate
configuration on stdout.

On stderr: every key that could not be mapped, every behaviour that differs
(the Duo proxy's defaults failmode=safe and exempt_primary_bind=true are
written explicitly, so the file behaves as the Duo proxy did, and flagged),
then the findings of ldapgate check's audit of the result.

Secrets (skey, service_account_password) are not written by default: the
report names the LDAPGATE_* environment variables to set. --secrets-dir DIR
writes each to a file of its own in DIR (mode 0600) and points a *_file key
at it; --with-secrets writes them into the YAML.

The exit status is 0 when the output is a configuration ldapgate accepts
(findings or not), 1 otherwise, with each error naming its section and key.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if secretsDir != "" && withSecrets {
				return usageError{errors.New("--secrets-dir and --with-secrets exclude each other")}
			}
			src, err := filepath.Abs(args[0])
			if err != nil {
				return err
			}
			data, err := readBounded(src, importer.MaxFileSize)
			if err != nil {
				return err
			}
			opts := importer.Options{Source: src}
			switch {
			case withSecrets:
				opts.Secrets = importer.SecretsInline
			case secretsDir != "":
				dir, err := filepath.Abs(secretsDir)
				if err != nil {
					return err
				}
				opts.Secrets, opts.SecretsDir = importer.SecretsFiles, dir
			}
			res, ierr := importer.Import(data, opts)
			stderr := cmd.ErrOrStderr()
			if ierr != nil {
				if _, err := stderr.Write(res.Report); err != nil {
					return err
				}
				return exitStatus(1) // said already
			}
			if err := writeSecretFiles(opts.SecretsDir, res.Files); err != nil {
				return fmt.Errorf("import: %w", err)
			}
			if _, err := stderr.Write(res.Report); err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(res.YAML)
			return err
		},
	}
	cmd.Flags().StringVar(&secretsDir, "secrets-dir", "", "write each secret to a file of its own (mode 0600) in this directory, referenced by a *_file key")
	cmd.Flags().BoolVar(&withSecrets, "with-secrets", false, "write the secrets into the YAML (keep the output private)")
	return cmd
}

// readBounded reads a regular file of at most limit bytes.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil {
		return nil, err
	} else if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes: not an authproxy.cfg", path, limit)
	}
	return data, nil
}

// writeSecretFiles writes each secret, mode 0600, in dir (created 0700 if
// missing). An existing file is replaced, its mode made 0600 first.
func writeSecretFiles(dir string, files []importer.SecretFile) error {
	if len(files) == 0 {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, f := range files {
		if err := os.Chmod(f.Path, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		out, err := os.OpenFile(f.Path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		_, werr := out.WriteString(f.Value.Reveal() + "\n")
		if err := out.Close(); werr == nil {
			werr = err
		}
		if werr != nil {
			return fmt.Errorf("%s: %w", f.Path, werr)
		}
	}
	return nil
}
