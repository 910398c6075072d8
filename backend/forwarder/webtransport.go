package forwarder

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
	"sync"
)

const (
	// webMaxAttempts bounds how many channels one request is tried on when
	// each failed before any byte of the request was written.
	webMaxAttempts = 3
	// webMaxReplay is how much of a request body is kept to re-send it on a
	// new channel. Before the first byte reaches a channel the Transport has
	// read at most a copy buffer (32 KiB) of it, so this is never the limit
	// in practice; a body read past it cannot be retried.
	webMaxReplay = 256 << 10
)

// webRoundTripper retries a request on a new channel while none of its bytes
// were written (never send twice), whatever its method: when getting the
// channel failed for a reason a second try may fix, or when the channel (e.g.
// a kept-alive one whose SSH connection just died) failed before the first
// byte left. http.Transport itself also retries idempotent requests on a
// reused connection, as HTTP allows.
type webRoundTripper struct {
	f    *WebForward
	next http.RoundTripper
}

func (rt *webRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	body, _ := req.Body.(*replayBody)
	for attempt := 1; ; attempt++ {
		at := &attemptTrace{}
		areq := req
		if attempt > 1 {
			areq = req.Clone(ctx)
			if body != nil {
				areq.Body = body.rewind()
			}
		}
		areq = areq.WithContext(httptrace.WithClientTrace(ctx, at.hooks()))
		resp, err := rt.next.RoundTrip(areq)
		if err == nil {
			return resp, nil
		}
		sent := at.maybeSent()
		if sent || attempt >= webMaxAttempts || !rt.retryable(ctx, err, at) || (body != nil && !body.replayable()) {
			return nil, &webRoundTripError{err: err, sent: sent}
		}
		rt.f.stats.retried.Add(1)
		rt.f.log.Debug("request failed before any byte was written; retrying on a new channel",
			"method", req.Method, "path", req.URL.Path, "attempt", attempt, "err", err)
	}
}

// retryable: the failure happened before the request was written, and a new
// channel may fix it.
func (rt *webRoundTripper) retryable(ctx context.Context, err error, at *attemptTrace) bool {
	if ctx.Err() != nil || rt.f.ctx.Err() != nil {
		return false
	}
	var de *webDialError
	if errors.As(err, &de) {
		// The Session already waited for a reconnect; an unavailable
		// server, a refused channel or a timeout will not change now.
		return retryableDial(ctx, de.err)
	}
	return at.gotConn() // the channel died before the request was written
}

// webRoundTripError is the final failure of a request; sent reports whether
// any of its bytes may have reached the app.
type webRoundTripError struct {
	err  error
	sent bool
}

func (e *webRoundTripError) Error() string { return e.err.Error() }
func (e *webRoundTripError) Unwrap() error { return e.err }

// attemptTrace follows one RoundTrip: which channel(s) the request got and
// whether bytes were written into them.
type attemptTrace struct {
	mu    sync.Mutex
	got   bool
	conn  *webConn
	start int64 // conn.written when the request got it
	sent  bool  // bytes went into an earlier channel of this attempt
}

func (a *attemptTrace) hooks() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{GotConn: a.gotConnHook}
}

func (a *attemptTrace) gotConnHook(info httptrace.GotConnInfo) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.conn != nil && a.conn.written.Load() != a.start {
		a.sent = true // the Transport retried an idempotent request itself
	}
	a.got = true
	c, ok := info.Conn.(*webConn)
	if !ok {
		a.conn, a.sent = nil, true // not ours: assume the worst
		return
	}
	a.conn, a.start = c, c.written.Load()
}

func (a *attemptTrace) gotConn() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.got
}

// maybeSent reports whether any byte of the request was written.
func (a *attemptTrace) maybeSent() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sent || (a.conn != nil && a.conn.written.Load() != a.start)
}

// replayBody is a request body that remembers what was read from it (up to
// webMaxReplay), so that a request can be re-sent on a new channel. Close
// does nothing: the server owns the inbound body.
type replayBody struct {
	rec *bodyRecord
	pos int // next byte of rec.buf to replay
}

type bodyRecord struct {
	mu       sync.Mutex
	src      io.Reader
	buf      []byte
	overflow bool  // read past webMaxReplay: buf was dropped
	err      error // the source's sticky error (io.EOF at the end)
}

func newReplayBody(src io.Reader) *replayBody {
	return &replayBody{rec: &bodyRecord{src: src}}
}

func (b *replayBody) Read(p []byte) (int, error) {
	r := b.rec
	r.mu.Lock()
	if !r.overflow && b.pos < len(r.buf) {
		n := copy(p, r.buf[b.pos:])
		b.pos += n
		r.mu.Unlock()
		return n, nil
	}
	if r.err != nil {
		err := r.err
		r.mu.Unlock()
		return 0, err
	}
	r.mu.Unlock()
	n, err := r.src.Read(p) // not under the lock: it may wait for the browser
	r.mu.Lock()
	if n > 0 && !r.overflow {
		if len(r.buf)+n > webMaxReplay {
			r.overflow, r.buf = true, nil
		} else {
			r.buf = append(r.buf, p[:n]...)
			b.pos += n
		}
	}
	if err != nil {
		r.err = err
	}
	r.mu.Unlock()
	return n, err
}

func (b *replayBody) Close() error { return nil }

// replayable reports whether everything read so far can be re-sent.
func (b *replayBody) replayable() bool {
	b.rec.mu.Lock()
	defer b.rec.mu.Unlock()
	return !b.rec.overflow
}

// rewind returns a reader that re-sends the body from its first byte.
func (b *replayBody) rewind() *replayBody { return &replayBody{rec: b.rec} }

// webBufferPool lends the reverse proxy the forwarder's 32 KiB copy buffers.
type webBufferPool struct{}

func (webBufferPool) Get() []byte { return *getBuf() }

func (webBufferPool) Put(b []byte) {
	if cap(b) >= bigBufSize {
		b = b[:bigBufSize]
		putBuf(&b)
	}
}
