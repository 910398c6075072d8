package discovery

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// maxProbeRead caps what a probe reads from one response (headers and body).
const maxProbeRead = 64 * 1024

// response is one HTTP response read by a probe.
type response struct {
	path        string // the path requested
	status      int
	header      http.Header
	cookieNames []string // names of Set-Cookie cookies; values are never kept
	title       string   // the HTML <title>, whitespace collapsed
	body        []byte   // the start of the (de-chunked) body
}

// probeResult is everything one probe learned about a port.
type probeResult struct {
	proto  Protocol
	host   string    // the dial host that connected
	first  *response // the answer to GET /, when proto is HTTP
	second *response // the answer after following one redirect, or nil
	banner []byte    // the start of a non-HTTP answer
	err    error     // why nothing (or not everything) was read
}

// last is the latest HTTP response (after the redirect, if one was followed).
func (r *probeResult) last() *response {
	if r.second != nil {
		return r.second
	}
	return r.first
}

// info summarises the probe for Service.Probe.
func (r *probeResult) info() ProbeInfo {
	pi := ProbeInfo{Protocol: r.proto}
	if r.first != nil {
		pi.Status = r.first.status
		pi.Server = r.first.header.Get("Server")
		pi.Location = r.first.header.Get("Location")
		l := r.last()
		pi.PageTitle, pi.Path = l.title, l.path
	}
	if len(r.banner) > 0 {
		pi.Banner = printable(r.banner, 80)
	}
	if r.err != nil {
		pi.Error = r.err.Error()
	}
	return pi
}

// prober sends the probe requests.
type prober struct {
	dial    Dialer
	timeout time.Duration
}

// probe connects to port (trying hosts in order until one connects) and
// sends one GET /; it follows at most one redirect on the same port.
func (p *prober) probe(ctx context.Context, hosts []string, port int) probeResult {
	res := p.firstExchange(ctx, hosts, port)
	host := res.host
	if res.proto != ProtoHTTP || res.first == nil {
		return res
	}
	next, ok := redirectPath(res.first, port)
	if !ok {
		return res
	}
	var conn2 net.Conn
	var err error
	if lz, ok := p.dial.(LazyDialer); ok {
		conn2, err = lz.DialLazy(ctx, host, port)
	} else {
		conn2, err = p.dialOne(ctx, host, port)
	}
	if err != nil {
		return res // the first answer is still good
	}
	if r2 := p.exchange(ctx, conn2, port, next); r2.proto == ProtoHTTP && r2.first != nil {
		res.second = r2.first
	}
	return res
}

// firstExchange sends GET / to the first host that connects. With a
// LazyDialer each host is tried with the request itself (one connection per
// host tried); otherwise a host is dialed first, then the request sent.
func (p *prober) firstExchange(ctx context.Context, hosts []string, port int) probeResult {
	lz, lazy := p.dial.(LazyDialer)
	if !lazy {
		conn, host, err := p.connect(ctx, hosts, port)
		if err != nil {
			return probeResult{proto: ProtoNone, err: err}
		}
		res := p.exchange(ctx, conn, port, "/")
		res.host = host
		return res
	}
	if len(hosts) == 0 {
		return probeResult{proto: ProtoNone, err: errors.New("no address to dial")}
	}
	var errs []error
	for _, h := range hosts {
		conn, err := lz.DialLazy(ctx, h, port)
		if err == nil {
			res := p.exchange(ctx, conn, port, "/")
			if !errors.Is(res.err, ErrNotConnected) {
				res.host = h
				return res
			}
			err = res.err
		}
		errs = append(errs, fmt.Errorf("dial %s: %w", net.JoinHostPort(h, strconv.Itoa(port)), err))
		if ctx.Err() != nil {
			break
		}
	}
	return probeResult{proto: ProtoNone, err: errors.Join(errs...)}
}

func (p *prober) connect(ctx context.Context, hosts []string, port int) (net.Conn, string, error) {
	if len(hosts) == 0 {
		return nil, "", errors.New("no address to dial")
	}
	var errs []error
	for _, h := range hosts {
		conn, err := p.dialOne(ctx, h, port)
		if err == nil {
			return conn, h, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, "", errors.Join(errs...)
}

func (p *prober) dialOne(ctx context.Context, host string, port int) (net.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	conn, err := p.dial.Dial(dctx, host, port)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", net.JoinHostPort(host, strconv.Itoa(port)), err)
	}
	return conn, nil
}

// exchange writes one request on conn, reads the answer and closes conn.
func (p *prober) exchange(ctx context.Context, conn net.Conn, port int, path string) probeResult {
	defer conn.Close()
	// SSH channels ignore deadlines, so the timeout and a cancel close the
	// connection, which unblocks a read on any kind of conn.
	_ = conn.SetDeadline(time.Now().Add(p.timeout))
	timer := time.AfterFunc(p.timeout, func() { _ = conn.Close() })
	defer timer.Stop()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()

	req := "GET " + path + " HTTP/1.1\r\n" +
		"Host: localhost:" + strconv.Itoa(port) + "\r\n" +
		"User-Agent: Porthole\r\n" +
		"Accept: text/html,application/xhtml+xml,*/*;q=0.8\r\n" +
		"Connection: close\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		// Servers that speak first (SSH, MySQL) may have closed already;
		// what they sent is still worth reading.
		res := readAnswer(conn, path)
		if res.proto == ProtoSilent || res.proto == ProtoNone {
			res.err = fmt.Errorf("write probe request: %w", err)
		}
		return res
	}
	res := readAnswer(conn, path)
	if err := ctx.Err(); err != nil {
		// Whatever was read was cut short by the cancel, not by the server.
		res.err = fmt.Errorf("probe interrupted: %w", err)
	}
	return res
}

// readAnswer reads and classifies what a server sent back, up to
// maxProbeRead bytes. It is also how recorded responses are parsed in tests.
func readAnswer(r io.Reader, path string) probeResult {
	br := bufio.NewReaderSize(io.LimitReader(r, maxProbeRead), 4096)
	head, err := br.Peek(5)
	if len(head) == 0 {
		if err == nil || errors.Is(err, io.EOF) {
			return probeResult{proto: ProtoSilent}
		}
		if errors.Is(err, ErrNotConnected) { // a LazyDialer's conn: nothing was sent
			return probeResult{proto: ProtoNone, err: err}
		}
		var ne net.Error
		if (errors.As(err, &ne) && ne.Timeout()) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed) {
			// Silence until the timeout closed the conn, or a server that
			// hung up on the request (Postgres).
			return probeResult{proto: ProtoSilent}
		}
		return probeResult{proto: ProtoSilent, err: fmt.Errorf("read: %w", err)}
	}
	if !bytes.HasPrefix(head, []byte("HTTP/")) {
		banner, _ := br.Peek(min(br.Buffered(), 512))
		banner = bytes.Clone(banner)
		return probeResult{proto: classifyBanner(banner), banner: banner}
	}
	start, _ := br.Peek(min(br.Buffered(), 512))
	start = bytes.Clone(start)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		return probeResult{proto: ProtoOther, banner: start, err: fmt.Errorf("bad HTTP response: %w", err)}
	}
	body, _ := io.ReadAll(resp.Body) // partial bodies are fine: keep what came
	resp.Body.Close()
	rs := &response{path: path, status: resp.StatusCode, header: resp.Header, body: body}
	for _, c := range resp.Cookies() {
		rs.cookieNames = append(rs.cookieNames, c.Name)
	}
	// The header values of Set-Cookie hold secrets (session cookies): drop them.
	resp.Header.Del("Set-Cookie")
	rs.title = htmlTitle(body)
	res := probeResult{proto: ProtoHTTP, first: rs}
	if isPlainToTLSComplaint(rs) {
		res.proto = ProtoTLS
	}
	return res
}

// classifyBanner tells what a non-HTTP first answer is.
func classifyBanner(b []byte) Protocol {
	switch {
	case bytes.HasPrefix(b, []byte("SSH-")):
		return ProtoSSH
	case len(b) >= 3 && b[0] == 0x15 && b[1] == 0x03 && b[2] <= 0x04:
		return ProtoTLS // a TLS alert record
	default:
		return ProtoOther
	}
}

// isPlainToTLSComplaint: servers that speak TLS on a port answer a plain
// request with a 400 saying so (Go's crypto/tls, nginx).
func isPlainToTLSComplaint(r *response) bool {
	if r.status != http.StatusBadRequest {
		return false
	}
	b := bytes.ToLower(r.body)
	return bytes.Contains(b, []byte("http request to an https server")) ||
		bytes.Contains(b, []byte("plain http request was sent to https port"))
}

// redirectPath returns the path to follow when r is a redirect to the same
// server (a relative Location, or localhost / a loopback address on port).
func redirectPath(r *response, port int) (string, bool) {
	if r.status < 300 || r.status > 399 {
		return "", false
	}
	loc := r.header.Get("Location")
	if loc == "" {
		return "", false
	}
	u, err := url.Parse(loc)
	if err != nil {
		return "", false
	}
	if u.Host != "" {
		if u.Scheme != "" && u.Scheme != "http" {
			return "", false
		}
		h, ps, err := net.SplitHostPort(u.Host)
		if err != nil || ps != strconv.Itoa(port) {
			return "", false
		}
		if h != "localhost" && !isLoopbackHost(h) {
			return "", false
		}
	} else if u.Scheme != "" {
		return "", false
	}
	base, _ := url.Parse(r.path)
	next := base.ResolveReference(u)
	p := next.EscapedPath()
	if p == "" {
		p = "/"
	}
	if next.RawQuery != "" {
		p += "?" + next.RawQuery
	}
	if p == r.path {
		return "", false
	}
	return p, true
}

func isLoopbackHost(h string) bool {
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// htmlTitle extracts the <title> of an HTML document, unescaped, whitespace
// collapsed, at most 200 bytes; "" when there is none.
func htmlTitle(body []byte) string {
	// ASCII-only lower case keeps every index valid in body: bytes.ToLower
	// turns invalid UTF-8 into 3-byte U+FFFD and shifts them (a fuzz
	// finding: a slice out of range on a title with \xfd bytes).
	lower := make([]byte, len(body))
	for k, c := range body {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[k] = c
	}
	i := bytes.Index(lower, []byte("<title"))
	for i >= 0 {
		rest := lower[i+len("<title"):]
		// "<title>" or "<title lang=…>", not "<titlebar>".
		if len(rest) > 0 && (rest[0] == '>' || rest[0] == ' ' || rest[0] == '\t' || rest[0] == '\n' || rest[0] == '\r') {
			break
		}
		j := bytes.Index(rest, []byte("<title"))
		if j < 0 {
			return ""
		}
		i += len("<title") + j
	}
	if i < 0 {
		return ""
	}
	gt := bytes.IndexByte(lower[i:], '>')
	if gt < 0 {
		return ""
	}
	start := i + gt + 1
	end := bytes.Index(lower[start:], []byte("</title"))
	if end < 0 {
		return ""
	}
	t := html.UnescapeString(string(body[start : start+end]))
	t = strings.Join(strings.Fields(t), " ")
	if !utf8.ValidString(t) {
		t = strings.ToValidUTF8(t, "")
	}
	if len(t) > 200 {
		t = t[:200]
		for !utf8.ValidString(t) {
			t = t[:len(t)-1]
		}
	}
	return t
}

// printable keeps the printable ASCII of b (others become '.'), at most n bytes.
func printable(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	out := make([]byte, len(b))
	for i, c := range b {
		if c >= 0x20 && c < 0x7f {
			out[i] = c
		} else {
			out[i] = '.'
		}
	}
	return strings.TrimRight(string(out), ".")
}
