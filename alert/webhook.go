package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Webhook bounds.
const (
	QueueSize = 256
	// Attempts is how many times one event is POSTed before it is given up.
	Attempts = 3
)

// backoff is the wait before each retry (capped at its last element).
var backoff = []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second}

// Webhook POSTs events to a URL. Notify is safe for concurrent use and never
// blocks; Run sends. Create one with NewWebhook.
type Webhook struct {
	url     string
	client  *http.Client
	log     *slog.Logger
	backoff []time.Duration

	mu   sync.Mutex
	ring [QueueSize]Event // FIFO of n events starting at head
	head int
	n    int
	wake chan struct{}

	delivered, dropped, failed atomic.Uint64
}

var _ Notifier = (*Webhook)(nil)

// NewWebhook returns a Webhook for url. timeout bounds one attempt
// (alerts.timeout; config holds its default, and a timeout that is not
// positive is a caller bug); log may be nil.
func NewWebhook(url string, timeout time.Duration, log *slog.Logger) *Webhook {
	if timeout <= 0 {
		panic("alert: NewWebhook with a timeout that is not positive: pass alerts.timeout")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Webhook{
		url: url,
		client: &http.Client{
			Timeout: timeout,
			// A receiver that redirects is misconfigured; following it
			// would turn the POST into a GET, or send alerts elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		log:     log,
		backoff: backoff,
		wake:    make(chan struct{}, 1),
	}
}

// Notify queues e and returns at once. A zero e.Time is set to now. When the
// queue is full, the oldest event is dropped and counted in Dropped: the
// newest events say most about the present.
func (w *Webhook) Notify(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	w.mu.Lock()
	if w.n == QueueSize {
		w.head = (w.head + 1) % QueueSize
		w.n--
		w.dropped.Add(1)
	}
	w.ring[(w.head+w.n)%QueueSize] = e
	w.n++
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Delivered counts events the receiver accepted (2xx).
func (w *Webhook) Delivered() uint64 { return w.delivered.Load() }

// Dropped counts events dropped because the queue was full.
func (w *Webhook) Dropped() uint64 { return w.dropped.Load() }

// Failed counts events given up on after every attempt failed (or one
// failed with a client error other than 408 and 429).
func (w *Webhook) Failed() uint64 { return w.failed.Load() }

// Pending is the number of events queued and not yet being sent.
func (w *Webhook) Pending() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// Run sends queued events, oldest first, until ctx is done; events still
// queued then are logged as lost. Run it in one goroutine.
func (w *Webhook) Run(ctx context.Context) {
	for {
		e, ok := w.next()
		if !ok {
			select {
			case <-ctx.Done():
				if n := w.Pending(); n > 0 {
					w.log.Warn("alert webhook stopped with undelivered alerts", "count", n)
				}
				return
			case <-w.wake:
				continue
			}
		}
		if ctx.Err() != nil {
			w.log.Warn("alert webhook stopped with undelivered alerts", "count", w.Pending()+1)
			return
		}
		w.deliver(ctx, e)
	}
}

func (w *Webhook) next() (Event, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n == 0 {
		return Event{}, false
	}
	e := w.ring[w.head]
	w.ring[w.head] = Event{}
	w.head = (w.head + 1) % QueueSize
	w.n--
	return e, true
}

// deliver POSTs e with bounded retries.
func (w *Webhook) deliver(ctx context.Context, e Event) {
	body, err := json.Marshal(e)
	if err != nil {
		w.failed.Add(1)
		w.log.Error("alert webhook: encoding alert", "kind", e.Kind, "err", err)
		return
	}
	var lastErr error
	for attempt := 1; attempt <= Attempts; attempt++ {
		if attempt > 1 {
			d := w.backoff[min(attempt-2, len(w.backoff)-1)]
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				w.failed.Add(1)
				w.log.Warn("alert webhook: gave up on shutdown", "kind", e.Kind, "attempts", attempt-1, "err", lastErr)
				return
			case <-t.C:
			}
		}
		retry, err := w.post(ctx, body)
		if err == nil {
			w.delivered.Add(1)
			return
		}
		lastErr = err
		w.log.Debug("alert webhook: attempt failed", "kind", e.Kind, "attempt", attempt, "err", err)
		if !retry {
			break
		}
	}
	w.failed.Add(1)
	w.log.Error("alert webhook: alert not delivered", "kind", e.Kind, "msg", e.Msg, "err", lastErr)
}

// post makes one attempt. retry says whether another attempt may succeed.
// Errors never include the URL, which may hold a token.
func (w *Webhook) post(ctx context.Context, body []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return false, errors.New("invalid webhook URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ldapgate")
	resp, err := w.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return true, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return false, nil
	case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
		return true, fmt.Errorf("receiver answered %s", resp.Status)
	default:
		return false, fmt.Errorf("receiver answered %s", resp.Status)
	}
}
