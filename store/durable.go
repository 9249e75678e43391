package store

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// durable records one-time uses in an append-only file: one line per use,
// the hex SHA-256 of the key (never the key itself, so a file that leaks
// names no code, user or section). A use is written and synced before
// useOnce reports it, and the file is read whole at open, so a key used
// once stays used across a crash and a restart.
//
// The file is locked (flock) while open: two processes sharing it would
// each accept a key the other already used.
type durable struct {
	mu     sync.Mutex
	f      *os.File // nil: memory only (no UsedFile)
	closed bool
	used   map[[sha256.Size]byte]struct{}
}

var errClosed = errors.New("store: closed")

// ErrUsedFileLocked is returned by Open when another process holds the
// one-time-use file.
var ErrUsedFileLocked = errors.New("store: the one-time-use file is in use by another process")

func openDurable(path string) (*durable, error) {
	d := &durable{used: map[[sha256.Size]byte]struct{}{}}
	if path == "" {
		return d, nil
	}
	_, statErr := os.Stat(path)
	created := errors.Is(statErr, os.ErrNotExist)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: one-time-use file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrUsedFileLocked, path)
		}
		return nil, fmt.Errorf("store: lock %s: %w", path, err)
	}
	if err := d.load(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("store: one-time-use file %s: %w", path, err)
	}
	if created {
		// The file's name must survive a crash too.
		if err := syncDir(filepath.Dir(path)); err != nil {
			f.Close()
			return nil, fmt.Errorf("store: one-time-use file: %w", err)
		}
	}
	d.f = f
	return d, nil
}

// load reads every recorded use. A last line cut short (a crash in the
// middle of a write, before the use was reported) is cut off, so that the
// next record starts on a line of its own; that use was never reported, so
// forgetting it lets nobody in twice. Any other line that is not a hash is an error: the file
// is not ours, or was damaged, and guessing which codes it held is unsafe.
func (d *durable) load(f *os.File) error {
	data, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	whole, torn := data, false
	if i := bytes.LastIndexByte(data, '\n'); i+1 < len(data) {
		whole, torn = data[:i+1], true
	}
	sc := bufio.NewScanner(bytes.NewReader(whole))
	for line := 1; sc.Scan(); line++ {
		text := sc.Bytes()
		var h [sha256.Size]byte
		if len(text) != 2*sha256.Size {
			return fmt.Errorf("line %d is not a recorded use", line)
		}
		if _, err := hex.Decode(h[:], text); err != nil {
			return fmt.Errorf("line %d is not a recorded use", line)
		}
		d.used[h] = struct{}{}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if torn {
		if err := f.Truncate(int64(len(whole))); err != nil {
			return err
		}
		return f.Sync()
	}
	return nil
}

// useOnce records key and reports whether it was new. The record is on
// disk (fsync) before true is returned; if writing fails, the key is not
// taken (a later attempt may succeed) and the error says why.
func (d *durable) useOnce(ctx context.Context, key string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	h := sha256.Sum256([]byte(key))
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false, errClosed
	}
	if _, ok := d.used[h]; ok {
		return false, nil
	}
	if d.f != nil {
		line := make([]byte, 0, 2*sha256.Size+1)
		line = hex.AppendEncode(line, h[:])
		line = append(line, '\n')
		if _, err := d.f.Write(line); err != nil {
			return false, fmt.Errorf("store: record a one-time use: %w", err)
		}
		if err := d.f.Sync(); err != nil {
			return false, fmt.Errorf("store: sync a one-time use: %w", err)
		}
	}
	d.used[h] = struct{}{}
	return true, nil
}

func (d *durable) close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	if d.f == nil {
		return nil
	}
	err := d.f.Close() // releases the lock
	d.f = nil
	return err
}

// syncDir fsyncs a directory, so that a file created or renamed in it
// survives a crash.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
