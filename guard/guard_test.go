package guard

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ldapgate/ldapgate/store"
)

func TestName(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"uid=alice,ou=people,dc=example,dc=com", "uid=alice,ou=people,dc=example,dc=com"},
		{"UID=Alice, OU=People,DC=example,DC=com", "uid=alice,ou=people,dc=example,dc=com"},
		{"2.5.4.3=Bob,dc=example,dc=com", "cn=bob,dc=example,dc=com"},
		{"  Alice ", "alice"},
		{`CORP\Alice`, `corp\alice`},
		{"alice@Example.COM", "alice@example.com"},
	} {
		if got := Name(tt.in); got != tt.want {
			t.Errorf("Name(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// recordingStore is the real store, recording the keys the guards build.
type recordingStore struct {
	store.Store
	keys []string
}

func (r *recordingStore) Remember(ctx context.Context, group, key string, ttl time.Duration) error {
	r.keys = append(r.keys, group, key)
	return r.Store.Remember(ctx, group, key, ttl)
}

// TestCacheKeys: the cache never puts the password in a key, two
// processes' keys differ, and a DN's spellings share one entry.
func TestCacheKeys(t *testing.T) {
	st, err := store.Open(store.Options{MaxKeys: 100})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordingStore{Store: st}
	ctx := context.Background()
	c1, _ := NewCache(rec, "vpn", time.Minute)
	c2, _ := NewCache(rec, "vpn", time.Minute)
	const password = "correct horse battery staple"
	_ = c1.Remember(ctx, "uid=alice,ou=people,dc=example,dc=com", "192.0.2.7", password)
	_ = c2.Remember(ctx, "uid=alice,ou=people,dc=example,dc=com", "192.0.2.7", password)
	for _, k := range rec.keys {
		if strings.Contains(k, password) {
			t.Fatalf("key %q holds the password", k)
		}
	}
	if rec.keys[1] == rec.keys[3] {
		t.Fatal("two caches (processes) made the same password hash")
	}
	if ok, _ := c1.Recall(ctx, "UID=Alice, ou=People,dc=example,dc=com", "192.0.2.7", password); !ok {
		t.Fatal("another spelling of the DN missed")
	}
	if ok, _ := c1.Recall(ctx, "uid=alice,ou=people,dc=example,dc=com", "192.0.2.7", password+"x"); ok {
		t.Fatal("another password hit")
	}
	if _, err := NewCache(rec, "vpn", 0); err == nil {
		t.Fatal("a cache with ttl 0 was built")
	}
}
