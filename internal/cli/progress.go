package cli

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"vpnauthz/internal/finding"
)

// How long a scan runs before its progress shows, and how often it is
// redrawn: a scan of a few seconds prints nothing but its result.
const (
	progressDelay = 3 * time.Second
	progressEvery = time.Second
)

// progress shows on a terminal how far a long scan has got, on one line it
// redraws: the accounts and connections its findings have covered so far
// and the ERROR findings among them. It is built from the findings the sink
// receives, so it knows nothing of what is still to read: the number of
// connections in scope comes only with the report.
type progress struct {
	out   io.Writer
	start time.Time
	stop  chan struct{}
	done  chan struct{}

	mu       sync.Mutex
	accounts map[string]struct{}
	conns    map[string]struct{}
	errors   int
	shown    bool
}

// startProgress starts showing the progress of one scan on out when show is
// true (out is a terminal); otherwise it returns nil, which shows nothing.
func startProgress(out io.Writer, show bool) *progress {
	if !show {
		return nil
	}
	p := &progress{
		out:      out,
		start:    time.Now(),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		accounts: map[string]struct{}{},
		conns:    map[string]struct{}{},
	}
	go p.run()
	return p
}

func (p *progress) run() {
	defer close(p.done)
	wait := time.NewTimer(progressDelay)
	defer wait.Stop()
	select {
	case <-p.stop:
		return
	case <-wait.C:
	}
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	for {
		p.draw()
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
	}
}

// finding counts one finding the scan delivered.
func (p *progress) finding(f *finding.Finding) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.accounts[f.OwnerAccountID] = struct{}{}
	if f.VpnConnectionID != "*" && f.VpnConnectionID != "" {
		p.conns[f.OwnerAccountID+"/"+f.Region+"/"+f.VpnConnectionID] = struct{}{}
	}
	if f.Status == finding.StatusError {
		p.errors++
	}
}

func (p *progress) draw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	elapsed := time.Since(p.start).Truncate(time.Second)
	fmt.Fprintf(p.out, "\r\033[Kvpnauthz: scanning for %s: %s, %s read, %s so far",
		elapsed, plural(len(p.accounts), "account"), plural(len(p.conns), "connection"), plural(p.errors, "error"))
	p.shown = true
}

// end stops the progress and clears its line, so that what follows starts
// on a clean line.
func (p *progress) end() {
	if p == nil {
		return
	}
	close(p.stop)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprint(p.out, "\r\033[K")
	}
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// isTerminal reports whether w is a terminal, where a progress line that
// redraws itself can be read; in a file or a pipe it would be noise.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && fileIsTerminal(f)
}
