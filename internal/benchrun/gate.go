package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// gate is an ldapgate process: a separate process, so that its
// descriptors, memory and goroutines are its own and the load generator's
// connections do not count against its descriptor limit.
type gate struct {
	cmd    *exec.Cmd
	addrs  chan map[string]string
	addr   map[string]string // section name, or "health", → host:port
	exited chan struct{}
}

// startGate runs binary serve --config cfg and waits until every section
// in sections and the health listener reported their addresses.
func startGate(ctx context.Context, binary, cfg string, sections []string) (*gate, error) {
	cmd := exec.Command(binary, "serve", "--config", cfg)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start ldapgate: %w", err)
	}
	g := &gate{cmd: cmd, addr: map[string]string{}, exited: make(chan struct{})}
	found := make(chan map[string]string, 1)
	lastLines := make(chan []string, 1)
	go func() {
		// Read the JSON log for the listeners' addresses, then drain it.
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		addrs := map[string]string{}
		var tail []string
		sent := false
		for sc.Scan() {
			if !sent {
				tail = append(tail, sc.Text())
				var rec struct{ Msg, Addr, Server string }
				if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Addr != "" {
					name := rec.Server
					if rec.Msg == "health listener up" {
						name = "health"
					}
					addrs[name] = rec.Addr
				}
				if complete(addrs, sections) {
					found <- addrs
					sent = true
				}
			}
		}
		if !sent {
			lastLines <- tail
		}
	}()
	go func() { cmd.Wait(); close(g.exited) }()
	select {
	case g.addr = <-found:
		return g, nil
	case <-g.exited:
		var tail []string
		select {
		case tail = <-lastLines:
		case <-time.After(time.Second):
		}
		return nil, fmt.Errorf("ldapgate exited before listening: %s", strings.Join(tail, "\n"))
	case <-time.After(30 * time.Second):
		g.stop()
		return nil, errors.New("ldapgate did not report its listeners within 30s")
	case <-ctx.Done():
		g.stop()
		return nil, ctx.Err()
	}
}

func complete(addrs map[string]string, sections []string) bool {
	if addrs["health"] == "" {
		return false
	}
	for _, s := range sections {
		if addrs[s] == "" {
			return false
		}
	}
	return true
}

func (g *gate) url(section string) string { return "ldap://" + g.addr[section] }

func (g *gate) stop() {
	syscall.Kill(-g.cmd.Process.Pid, syscall.SIGKILL)
	<-g.exited
}

// procStats is what the kernel and the process say about its cost.
type procStats struct {
	RSSKiB      int
	Descriptors int
	Goroutines  int
	Threads     int
}

func (g *gate) stats() (procStats, error) {
	var s procStats
	pid := g.cmd.Process.Pid
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		k, v, _ := strings.Cut(line, ":")
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		switch k {
		case "VmRSS":
			s.RSSKiB, _ = strconv.Atoi(f[0])
		case "Threads":
			s.Threads, _ = strconv.Atoi(f[0])
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return s, err
	}
	s.Descriptors = len(fds)
	resp, err := http.Get("http://" + g.addr["health"] + "/metrics")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			s.Goroutines = int(f)
		}
	}
	return s, sc.Err()
}
