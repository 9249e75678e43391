package breakglass

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// fileVersion is the codes file's format.
const fileVersion = 1

// file is the codes file: every code issued and not yet used or revoked,
// as a salted argon2id hash. It never holds a code.
type file struct {
	Version int     `json:"version"`
	Codes   []entry `json:"codes"`
}

// entry is one code.
type entry struct {
	// ID names the code in the record of uses; random, not derived from
	// the code.
	ID      string    `json:"id"`
	Section string    `json:"section"`
	User    string    `json:"user"` // canonical DN (internal/dn)
	Issued  time.Time `json:"issued_at"`
	KDF     string    `json:"kdf"` // argon2id
	Params  Params    `json:"params"`
	// Salt is shared by the codes issued together to one user, so that a
	// typed code costs one hash whatever the number of codes.
	Salt []byte `json:"salt"`
	Hash []byte `json:"hash"`
}

// ErrInsecureFile is returned for a codes file that others could write:
// whoever can add a hash can let themselves in.
var ErrInsecureFile = errors.New("breakglass: codes file is writable by group or others")

// load reads the codes file; a file that does not exist holds no codes.
func load(path string, max Params) (*file, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &file{Version: fileVersion}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("breakglass: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("breakglass: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("breakglass: %s is not a regular file", path)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("%w: %s (mode %v; chmod 600)", ErrInsecureFile, path, fi.Mode().Perm())
	}
	if fi.Size() > maxFileSize {
		return nil, fmt.Errorf("breakglass: %s is larger than %d bytes", path, maxFileSize)
	}
	var cf file
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cf); err != nil {
		return nil, fmt.Errorf("breakglass: %s: %w", path, err)
	}
	if cf.Version != fileVersion {
		return nil, fmt.Errorf("breakglass: %s: version %d, want %d", path, cf.Version, fileVersion)
	}
	for i, e := range cf.Codes {
		if err := e.check(max); err != nil {
			return nil, fmt.Errorf("breakglass: %s: codes[%d]: %w", path, i, err)
		}
	}
	return &cf, nil
}

// maxFileSize bounds the codes file read on each use.
const maxFileSize = 4 << 20

func (e entry) check(max Params) error {
	switch {
	case e.ID == "" || e.Section == "" || e.User == "":
		return errors.New("id, section and user are required")
	case e.KDF != kdfArgon2id:
		return fmt.Errorf("kdf %q, want %s", e.KDF, kdfArgon2id)
	case len(e.Salt) < saltLen || len(e.Hash) != hashLen:
		return errors.New("salt or hash of the wrong length")
	}
	return e.Params.within(max)
}

// save writes cf to path atomically: a temporary file in the same
// directory, mode 0600, synced, renamed over path, and the directory
// synced, so that a crash leaves either the old file or the new one.
func save(path string, cf *file) (err error) {
	data, err := json.MarshalIndent(cf, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("breakglass: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("breakglass: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("breakglass: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("breakglass: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("breakglass: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("breakglass: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("breakglass: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("breakglass: sync %s: %w", dir, err)
	}
	return nil
}

// update changes the codes file under an exclusive lock (path + ".lock"),
// so that ldapgate serve removing a used code and ldapgate break-glass
// issuing new ones never lose each other's change.
func update(path string, max Params, change func(*file) error) error {
	lock, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("breakglass: lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("breakglass: lock: %w", err)
	}
	cf, err := load(path, max)
	if err != nil {
		return err
	}
	if err := change(cf); err != nil {
		return err
	}
	return save(path, cf)
}

// CheckFile reports what would stop a Keeper from reading the codes file
// at path (`ldapgate check` runs it): nil for a good file or none yet.
func CheckFile(path string, max Params) error {
	_, err := load(path, max)
	return err
}
