package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// The processes whose CPU time each measurement records: together they
// share the box's cores, so their sum says whether the box, not one of
// them, was the bound.
const (
	procDirect = "slapd"
	procRelay  = "slapd back-ldap"
	procGate   = "ldapgate"
	procLoad   = "load generator + simulator"
)

var procOrder = []string{procDirect, procRelay, procGate, procLoad}

// userHZ is the unit of utime and stime in /proc/PID/stat (USER_HZ, 100
// on every Linux architecture Go runs on).
const userHZ = 100

// cpuTime is a process's user + system CPU time so far, all its threads.
func cpuTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// count fields from after its closing one (field 3 is the state).
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %q, stime %q", pid, f[11], f[12])
	}
	return time.Duration(utime+stime) * time.Second / userHZ, nil
}

// cpuUse is what one measurement cost each process: CPU time over the
// wall time it ran.
type cpuUse struct {
	Wall time.Duration
	CPU  map[string]time.Duration
}

func (u *cpuUse) add(o cpuUse) {
	if u.CPU == nil {
		u.CPU = map[string]time.Duration{}
	}
	u.Wall += o.Wall
	for k, v := range o.CPU {
		u.CPU[k] += v
	}
}

// cores is how many cores name kept busy on average.
func (u cpuUse) cores(name string) float64 {
	if u.Wall <= 0 {
		return 0
	}
	return u.CPU[name].Seconds() / u.Wall.Seconds()
}

// total is the cores every process together kept busy.
func (u cpuUse) total() float64 {
	t := 0.0
	for _, n := range procOrder {
		t += u.cores(n)
	}
	return t
}

// measureCPU runs f and records the CPU time each of pids spent meanwhile.
func measureCPU(pids map[string]int, f func()) cpuUse {
	read := func() map[string]time.Duration {
		m := map[string]time.Duration{}
		for name, pid := range pids {
			if d, err := cpuTime(pid); err == nil {
				m[name] = d
			}
		}
		return m
	}
	before, start := read(), time.Now()
	f()
	after, wall := read(), time.Since(start)
	u := cpuUse{Wall: wall, CPU: map[string]time.Duration{}}
	for name, a := range after {
		if b, ok := before[name]; ok {
			u.CPU[name] = a - b
		}
	}
	return u
}
