package breakglass

import (
	"crypto/subtle"
	"fmt"

	"golang.org/x/crypto/argon2"
)

const (
	kdfArgon2id = "argon2id"
	saltLen     = 16
	hashLen     = 32
)

// Params are argon2id's costs. Those of new codes and the most a stored
// code may ask for come from config (config.BreakGlassKDF,
// config.BreakGlassMaxKDF); each code keeps its own, so changing them
// later does not invalidate codes already issued.
type Params struct {
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memory_kib"`
	Threads   uint8  `json:"threads"`
}

// within reports an error when p is zero somewhere or costs more than max:
// a codes file must not make ldapgate spend gigabytes on one bind.
func (p Params) within(bound Params) error {
	if p.Time < 1 || p.MemoryKiB < 8*uint32(max(p.Threads, 1)) || p.Threads < 1 {
		return fmt.Errorf("argon2id parameters %+v are too small", p)
	}
	if p.Time > bound.Time || p.MemoryKiB > bound.MemoryKiB || p.Threads > bound.Threads {
		return fmt.Errorf("argon2id parameters %+v exceed the bound %+v", p, bound)
	}
	return nil
}

func (p Params) hash(code string, salt []byte) []byte {
	return argon2.IDKey([]byte(code), salt, p.Time, p.MemoryKiB, p.Threads, hashLen)
}

// matches reports whether sum is the hash of a code: constant time.
func matches(sum, want []byte) bool { return subtle.ConstantTimeCompare(sum, want) == 1 }
