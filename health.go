package main

// Backend health: every connect is a check (passive), and with check= a
// TCP connect to every backend each interval (active). fall failed checks
// in a row mark a backend down, rise good ones up again; each change is one
// event, with its reason.

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"time"
)

// connected records a successful connect to b: a good check.
func (p *backendPool) connected(b *backend) {
	b.total.Add(1)
	if b.up.Load() && b.badRun.Load() == 0 {
		return // the usual case, without the lock
	}
	p.checked(b, nil)
}

// connectFailed records a failed connect to b: a failed check.
func (p *backendPool) connectFailed(b *backend, err error) {
	b.failed.Add(1)
	p.checked(b, err)
}

// checked applies one check's result (err nil: good) to b's state, and
// reports the change if there is one. Without active checks, one good
// connection brings a backend back up: nothing else would.
func (p *backendPool) checked(b *backend, err error) {
	now := time.Now()
	b.mu.Lock()
	var change *Event
	if err != nil {
		b.goodRun = 0
		n := b.badRun.Add(1)
		if b.up.Load() && int(n) >= p.fall {
			b.up.Store(false)
			b.since = now
			change = &Event{Kind: BackendDown, Checks: int(n), Err: checkReason(err)}
		}
		if !b.up.Load() {
			b.retryAt = now.Add(passiveRetry)
		}
	} else {
		b.badRun.Store(0)
		b.goodRun++
		need := p.rise
		if p.check == 0 {
			need = 1
		}
		if !b.up.Load() && b.goodRun >= need {
			b.up.Store(true)
			b.since = now
			change = &Event{Kind: BackendUp, Checks: b.goodRun}
		}
	}
	b.mu.Unlock()
	if change != nil && p.emit != nil {
		change.Time, change.Route, change.Remote = now, p.route, b.addr
		p.emit(*change)
	}
}

// retryDue reports whether b, down, may be tried by a connection now
// (passive checks: once per passiveRetry); if so the next try is due only
// after another passiveRetry, so that one connection probes it.
func (b *backend) retryDue(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.up.Load() || now.Before(b.retryAt) {
		return false
	}
	b.retryAt = now.Add(passiveRetry)
	return true
}

// checkReason is the short reason of a failed connect for the log: the
// system's words without the operation and address ("connect: connection
// refused", "i/o timeout", "lookup web2: no such host").
func checkReason(err error) error {
	var ne net.Error
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return errors.New("connect: timed out")
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		err = op.Err
	}
	return err
}

// startChecks starts the active checks, if the pool has them: a goroutine
// per backend that connects to it every check interval.
func (p *backendPool) startChecks() {
	if p.check == 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.stopChecks = cancel
	for _, e := range p.entries {
		p.checks.Add(1)
		go p.checkLoop(ctx, e.b)
	}
}

// stop ends the active checks and waits for them. It may be called more
// than once.
func (p *backendPool) stop() {
	if p.stopChecks != nil {
		p.stopChecks()
		p.checks.Wait()
	}
}

// checkLoop checks b every interval until ctx is done. The first check
// comes after a random part of the interval, so that the checks of many
// backends and routes spread out.
func (p *backendPool) checkLoop(ctx context.Context, b *backend) {
	defer p.checks.Done()
	t := time.NewTimer(time.Duration(rand.Int64N(int64(p.check))))
	defer t.Stop()
	d := net.Dialer{Timeout: p.timeout}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c, err := d.DialContext(ctx, "tcp", b.addr)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			c.Close()
		}
		b.mu.Lock()
		b.lastCheck = time.Now()
		b.mu.Unlock()
		p.checked(b, err)
		t.Reset(p.check)
	}
}
