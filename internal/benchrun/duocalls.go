package main

import (
	"context"
	"crypto/x509"
	"errors"
	"time"

	"github.com/ldapgate/ldapgate/duoclient"
	"github.com/ldapgate/ldapgate/failmode"
	"github.com/ldapgate/ldapgate/internal/loadgen"
)

// duoAlone is the gated bind's second baseline: the two Duo calls
// (preauth, then auth) made by the same client code and transport
// ldapgate uses, with no LDAP at all. A gated bind through ldapgate costs
// a direct bind plus these plus ldapgate's own work.
const duoAlone = "Duo calls alone"

// duoCalls measures preauth + auth of an instantly approved push against
// the simulator, on conns goroutines.
func (b *bench) duoCalls(ctx context.Context, conns int) (loadgen.Result, error) {
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(b.sim.CAPEM())
	c, err := duoclient.New(duoclient.Config{APIHost: b.sim.APIHost(), IntegrationKey: b.sim.IntegrationKey(),
		SecretKey: b.sim.SecretKey(), RootCAs: roots, Timeout: time.Second, PushTimeout: 5 * time.Minute,
		UserAgent: "ldapgate-benchrun"})
	if err != nil {
		return loadgen.Result{}, err
	}
	defer c.Close()
	return loadgen.Run(ctx, loadgen.Spec{
		Conns: conns, Warmup: b.sz.Warmup, Duration: b.sz.Duration,
		Open: func(context.Context, int) (loadgen.Worker, error) {
			return duoWorker{b: b, c: c}, nil
		},
	}), nil
}

type duoWorker struct {
	b *bench
	c *duoclient.Client
}

var errNotAllowed = errors.New("the simulator did not approve the push")

func (w duoWorker) Do(ctx context.Context) error {
	v, err := w.c.Verify(ctx, failmode.Attempt{Username: w.b.user().UID, ClientIP: "127.0.0.1",
		Factor: failmode.FactorPush, Server: "benchrun"})
	if err == nil && !v.Allowed {
		err = errNotAllowed
	}
	return err
}

func (duoWorker) Close() {}
