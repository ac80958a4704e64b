package scan

import (
	"context"
	"sync"
)

// SendPacer is a Source that takes each call's token itself, through Pace,
// right before the request goes on the wire. The scanner then leaves the
// token to it: the time a client library spends building and signing a
// request varies from call to call, and taken before that work, tokens 1/rate
// apart would reach the API closer together than the quota allows.
type SendPacer interface {
	Source
	PacesOnSend() bool
}

type gateKey struct{}

// gate is the token of one call attempt, taken at most once.
type gate struct {
	take   func() error
	once   sync.Once
	err    error
	passed bool
}

func withGate(ctx context.Context, g *gate) context.Context {
	return context.WithValue(ctx, gateKey{}, g)
}

// Pace waits for the token of the call ctx belongs to and takes it; a
// SendPacer calls it right before sending. It returns nil at once for a
// context the scanner did not give a token to (the call is not paced, or was
// paced already), and an error when the scan's time ran out first: the
// request must then not be sent.
func Pace(ctx context.Context) error {
	g, ok := ctx.Value(gateKey{}).(*gate)
	if !ok {
		return nil
	}
	g.once.Do(func() {
		g.err = g.take()
		g.passed = g.err == nil
	})
	return g.err
}
