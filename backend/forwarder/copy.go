package forwarder

import (
	"io"
	"net"
	"sync"
)

const (
	// bigBufSize is the copy buffer for bulk data, taken from bufPool.
	bigBufSize = 32 << 10
	// smallBufSize is the per-connection buffer used while data trickles,
	// so an idle connection blocked in Read holds no big buffer.
	smallBufSize = 2 << 10
)

var bufPool = sync.Pool{New: func() any {
	b := make([]byte, bigBufSize)
	return &b
}}

func getBuf() *[]byte  { return bufPool.Get().(*[]byte) }
func putBuf(b *[]byte) { bufPool.Put(b) }

// pump picks the read buffer for one copy direction. It reads into a small
// per-connection buffer while reads come back short (interactive traffic,
// idle connections) and switches to a pooled 32 KiB buffer once a read fills
// the small one (bulk), returning it as soon as a read comes back short —
// which means the source was drained, so the next Read would likely block.
// Blocking while holding the big buffer happens only when a read exactly
// drains the source.
type pump struct {
	small []byte
	big   *[]byte
}

func newPump() *pump { return &pump{small: make([]byte, smallBufSize)} }

// buf is the buffer for the next Read.
func (p *pump) buf() []byte {
	if p.big != nil {
		return *p.big
	}
	return p.small
}

// adapt is called with the size of the last Read once its bytes were used.
func (p *pump) adapt(n int) {
	switch {
	case p.big != nil && n < len(*p.big):
		putBuf(p.big)
		p.big = nil
	case p.big == nil && n == len(p.small):
		p.big = getBuf()
	}
}

// release returns the big buffer, if any.
func (p *pump) release() {
	if p.big != nil {
		putBuf(p.big)
		p.big = nil
	}
}

// closeWriter is a connection that can half-close (TCP, SSH channels).
type closeWriter interface {
	CloseWrite() error
}

func closeWrite(c io.Closer) error {
	if cw, ok := c.(closeWriter); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}

// readWaiter waits until a socket is readable without holding a buffer.
type readWaiter interface {
	wait() error
}

// newReadWaiter returns a readWaiter for c, or nil where the platform or the
// connection type does not support waiting without reading.
func newReadWaiter(c net.Conn) readWaiter { return platformReadWaiter(c) }
