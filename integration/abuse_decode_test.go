package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
)

// Issue 8: what a client without credentials can make ldapgate spend while
// decoding a request. The bounds are generous (the binary is built with
// -race, which multiplies memory) but far below what the attacks cost
// without gldap patches 21-23 (gigabytes).
const abuseRSSBound = 256 << 20

// abuseRSSKill: past this (resident, or heap), the test kills ldapgate
// rather than let it take the machine down, and fails.
const abuseRSSKill = 3 << 30

// rss is ldapgate's resident set size (VmRSS), in bytes.
func (e *env) rss() int64 {
	e.t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", e.proc().Pid))
	if err != nil {
		e.t.Fatalf("reading ldapgate's status: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				e.t.Fatalf("VmRSS %q: %v", v, err)
			}
			return kb << 10
		}
	}
	e.t.Fatal("no VmRSS in ldapgate's status")
	return 0
}

// cpuTime is the CPU time ldapgate has used (user and system), from
// /proc/PID/stat in clock ticks of 10ms.
func (e *env) cpuTime() time.Duration {
	e.t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", e.proc().Pid))
	if err != nil {
		return 0
	}
	// the fields after the command name, which is in parentheses
	fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// heapInUse is ldapgate's go_memstats_heap_inuse_bytes, from /metrics: a
// buffer allocated but not yet written to (the announced 4 MiB) is heap but
// not resident.
func (e *env) heapInUse() (int64, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + e.health + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_heap_inuse_bytes "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int64(f), err
		}
	}
	return 0, fmt.Errorf("no go_memstats_heap_inuse_bytes in /metrics (%v)", sc.Err())
}

// usage is the peak memory ldapgate used while watched, and the CPU time it
// had used by the last sample.
type usage struct {
	rss, heap int64
	cpu       time.Duration
}

// watch samples ldapgate's RSS every 20ms and its heap every 100ms until the
// returned function is called, which returns the peaks. Past abuseRSSKill
// (either) it kills ldapgate.
func (e *env) watch() (peak func() usage) {
	proc := e.proc()
	var maxRSS, maxHeap, cpu atomic.Int64
	done := make(chan struct{})
	stopped := make(chan struct{})
	raise := func(m *atomic.Int64, v int64) {
		if v > m.Load() {
			m.Store(v)
		}
		if v > abuseRSSKill {
			_ = proc.Kill()
		}
	}
	go func() {
		defer close(stopped)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-done:
				return
			case <-e.exited:
				return
			case <-tick.C:
			}
			data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", proc.Pid))
			if err != nil {
				return
			}
			for _, line := range strings.Split(string(data), "\n") {
				if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
					kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
					raise(&maxRSS, kb<<10)
				}
			}
			if c := e.cpuTime(); c > 0 {
				cpu.Store(int64(c))
			}
			if n%5 == 0 {
				if h, err := e.heapInUse(); err == nil {
					raise(&maxHeap, h)
				}
			}
		}
	}()
	return func() usage {
		close(done)
		<-stopped
		if h, err := e.heapInUse(); err == nil {
			raise(&maxHeap, h)
		}
		if c := e.cpuTime(); c > 0 {
			cpu.Store(int64(c))
		}
		return usage{rss: maxRSS.Load(), heap: maxHeap.Load(), cpu: time.Duration(cpu.Load())}
	}
}

// berHeader is an identifier octet and a definite length.
func berHeader(id byte, n int) []byte {
	if n < 0x80 {
		return []byte{id, byte(n)}
	}
	return []byte{id, 0x84, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
}

func berTLV(id byte, content []byte) []byte { return append(berHeader(id, len(content)), content...) }

// deepSearch is a SearchRequest whose filter is (!(!(...(cn=value)...)))
// with nots NOT filters: the request is nested nots+4 levels deep. It is
// built in one pass (nesting one level at a time would copy it nots times).
func deepSearch(messageID byte, nots int, value []byte) []byte {
	core := berTLV(0xa3, append(berTLV(0x04, []byte("cn")), berTLV(0x04, value)...))
	hdrs := make([][]byte, nots)
	size := len(core)
	for i := range hdrs {
		hdrs[i] = berHeader(0xa2, size)
		size += len(hdrs[i])
	}
	filter := make([]byte, 0, size)
	for i := nots - 1; i >= 0; i-- {
		filter = append(filter, hdrs[i]...)
	}
	filter = append(filter, core...)
	op := berTLV(0x04, []byte("dc=example,dc=com"))
	op = append(op, 0x0a, 0x01, 0x02, 0x0a, 0x01, 0x00, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x01, 0x01, 0x00)
	op = append(op, filter...)
	op = append(op, 0x30, 0x00)
	return berTLV(0x30, append([]byte{0x02, 0x01, messageID}, berTLV(0x63, op)...))
}

// TestAbuseDeepNesting: four clients at once each send a 3 MB search nested
// 990 levels deep (which cost 2-14 s of CPU and 3.5-5 GB each). ldapgate
// refuses them from a linear scan — protocolError under their message ID,
// then a Notice of Disconnection — stays small, and serves a bind meanwhile.
func TestAbuseDeepNesting(t *testing.T) {
	e := start(t, []section{secureSection}, withProcess()) // its memory and CPU are the point
	addr := e.addr["secure"]
	pdu := deepSearch(5, 986, bytes.Repeat([]byte("v"), 3<<20))
	if len(pdu) < 3<<20 {
		t.Fatalf("request of %d bytes", len(pdu))
	}
	base, cpu := e.rss(), e.cpuTime()
	peak := e.watch()

	const attackers = 4
	type outcome struct {
		pdus []*ber.Packet
		err  error
	}
	outcomes := make([]outcome, attackers)
	var wg sync.WaitGroup
	for i := range attackers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				outcomes[i].err = err
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(60 * time.Second))
			if _, err := c.Write(pdu); err != nil {
				outcomes[i].err = err
				return
			}
			// what ldapgate answers, until it closes (at most a few PDUs)
			for range 4 {
				p, err := ber.ReadPacket(c)
				if err != nil {
					outcomes[i].err = err
					return
				}
				outcomes[i].pdus = append(outcomes[i].pdus, p)
			}
		}()
	}
	alice := person(t, "alice")
	bindErr := e.bind("secure", alice.DN(), alice.Password)
	wg.Wait()
	max := peak()
	t.Logf("ldapgate RSS: %d MiB before; peak %d MiB, heap %d MiB, %v of CPU, during four 3 MB requests nested 990 deep", base>>20, max.rss>>20, max.heap>>20, max.cpu-cpu)

	select {
	case <-e.exited:
		t.Fatalf("ldapgate died (or was killed past %d MiB)", abuseRSSKill>>20)
	default:
	}
	if bindErr != nil {
		t.Errorf("alice's bind during the attack: %v", bindErr)
	}
	if max.rss > abuseRSSBound {
		t.Errorf("peak RSS %d MiB, want under %d MiB", max.rss>>20, abuseRSSBound>>20)
	}
	for i, o := range outcomes {
		// protocolError for message 5, then the notice (message 0), then EOF
		if len(o.pdus) != 2 {
			t.Errorf("attacker %d: %d PDUs before %v, want the refusal and a notice", i, len(o.pdus), o.err)
			continue
		}
		for j, wantID := range []int64{5, 0} {
			p := o.pdus[j]
			if len(p.Children) < 2 || len(p.Children[1].Children) < 3 {
				t.Errorf("attacker %d: PDU %d is not an LDAPResult", i, j)
				continue
			}
			id, _ := p.Children[0].Value.(int64)
			code, _ := ber.ParseInt64(p.Children[1].Children[0].Data.Bytes())
			if id != wantID || code != 2 {
				t.Errorf("attacker %d: PDU %d has message ID %d and code %d, want %d and protocolError", i, j, id, code, wantID)
			}
		}
	}
}

// TestAbuseAnnouncedLength: 1,000 connections each announce a 4 MiB request
// and send nothing more (500 of them took 2.1 GB). ldapgate allocates
// nothing for what hasn't arrived, and still serves a bind.
func TestAbuseAnnouncedLength(t *testing.T) {
	e := start(t, []section{secureSection}, withProcess()) // its memory is the point
	addr := e.addr["secure"]
	base := e.rss()
	peak := e.watch()

	// spread over 20 loopback addresses, so that no per-address cap
	// (64 by default) refuses them
	const conns, sources = 1000, 20
	var open []net.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	header := []byte{0x30, 0x84, 0x00, 0x40, 0x00, 0x00} // LDAPMessage of 4 MiB
	deadline := time.Now().Add(60 * time.Second)
	for i := range conns {
		if time.Now().After(deadline) {
			t.Fatalf("only %d connections within a minute", i)
		}
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%sources))}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		open = append(open, c)
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(header); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
	}
	// ldapgate has read the headers by now; give it time to (not) act on
	// them, then check that it still answers
	time.Sleep(3 * time.Second)
	select {
	case <-e.exited:
		max := peak()
		t.Fatalf("ldapgate died (or was killed past %d MiB): peak RSS %d MiB, heap %d MiB", abuseRSSKill>>20, max.rss>>20, max.heap>>20)
	default:
	}
	alice := person(t, "alice")
	bindErr := e.bind("secure", alice.DN(), alice.Password)
	max := peak()
	t.Logf("ldapgate RSS: %d MiB before; peak %d MiB, heap %d MiB, with %d connections announcing 4 MiB", base>>20, max.rss>>20, max.heap>>20, conns)
	if bindErr != nil {
		t.Errorf("alice's bind with the connections open: %v", bindErr)
	}
	// the announced bytes would be heap, but not resident until written
	if max.rss > abuseRSSBound || max.heap > abuseRSSBound {
		t.Errorf("peak RSS %d MiB and heap %d MiB, want both under %d MiB", max.rss>>20, max.heap>>20, abuseRSSBound>>20)
	}
	// the connections are still open (waiting for their 4 MiB), not refused
	one := open[len(open)-1]
	_ = one.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := one.Read(make([]byte, 1)); err == nil {
		t.Errorf("ldapgate answered a connection that only sent a header")
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Errorf("ldapgate closed a connection that only sent a header: %v", err)
	}
}
