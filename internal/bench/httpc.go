package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/porthole-app/porthole/internal/testrig"
)

// newTransport is a plain HTTP/1.1 client transport for loopback: no proxy,
// no HTTP/2. Go's dialer sets TCP_NODELAY, as browsers and curl do.
func newTransport(keepAlive bool, maxConns int) *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		DisableKeepAlives:   !keepAlive,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
		MaxIdleConns:        maxConns,
		MaxIdleConnsPerHost: maxConns,
		MaxConnsPerHost:     maxConns,
		IdleConnTimeout:     30 * time.Second,
		WriteBufferSize:     16 << 10,
		ReadBufferSize:      64 << 10,
	}
}

// getAll GETs url, reads the whole body and checks for 200. It returns the
// number of body bytes.
func getAll(ctx context.Context, rt http.RoundTripper, url string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, fmt.Errorf("build request for %s: %w", url, err)
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	n, err := io.CopyBuffer(io.Discard, resp.Body, make([]byte, 256<<10))
	if err != nil {
		return n, fmt.Errorf("GET %s: read body after %d bytes: %w", url, n, err)
	}
	if resp.StatusCode != http.StatusOK {
		return n, fmt.Errorf("GET %s: status %s", url, resp.Status)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return n, fmt.Errorf("GET %s: got %d of %d body bytes", url, n, resp.ContentLength)
	}
	return n, nil
}

// getBody GETs url and returns its body (at most 1 MiB).
func getBody(ctx context.Context, rt http.RoundTripper, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("build request for %s: %w", url, err)
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s: read body: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %s", url, resp.Status)
	}
	return b, nil
}

var resourceRE = regexp.MustCompile(`(?:src|href)="(/res/[0-9]+)"`)

// parseResources returns the distinct /res/N paths an HTML page references,
// in order of appearance.
func parseResources(html []byte) []string {
	var out []string
	seen := make(map[string]bool)
	for _, m := range resourceRE.FindAllSubmatch(html, -1) {
		p := string(m[1])
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// loadPage fetches base+"/" and then every resource it references over at
// most `parallel` connections, like a browser: newConn opens a new TCP
// connection per request, otherwise connections are kept alive and reused.
// A fresh transport per load means the page starts with no open connection.
func loadPage(ctx context.Context, base string, parallel int, newConn bool) (time.Duration, error) {
	tr := newTransport(!newConn, parallel)
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()

	start := time.Now()
	html, err := getBody(ctx, tr, base+"/")
	if err != nil {
		return 0, err
	}
	res := parseResources(html)
	if len(res) != testrig.WebAppResources {
		return 0, fmt.Errorf("page %s/ references %d /res/N resources, want %d: the test app changed", base, len(res), testrig.WebAppResources)
	}
	jobs := make(chan string)
	errs := make(chan error, parallel)
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			for p := range jobs {
				if _, err := getAll(ctx, tr, base+p); err != nil {
					errs <- err
					cancel()
					for range jobs { // drain so the feeder finishes
					}
					return
				}
			}
		})
	}
	for _, p := range res {
		select {
		case jobs <- p:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(jobs)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, fmt.Errorf("load page: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("load page: %w", err)
	}
	return time.Since(start), nil
}

// heldConn is a TCP connection that did one keep-alive request and stays open.
type heldConn struct{ c net.Conn }

// openHeld dials addr, sends one keep-alive GET for path and reads the
// response, leaving the connection open.
func openHeld(ctx context.Context, addr, path string) (*heldConn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nConnection: keep-alive\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		c.Close()
		return nil, fmt.Errorf("write request to %s: %w", addr, err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("read response from %s: %w", addr, err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("read body from %s: %w", addr, err)
	}
	if resp.StatusCode != http.StatusOK {
		c.Close()
		return nil, fmt.Errorf("GET %s via %s: status %s", path, addr, resp.Status)
	}
	if resp.Close {
		c.Close()
		return nil, errors.New("server closed the connection after the response: keep-alive is off in the web app")
	}
	_ = c.SetDeadline(time.Time{})
	return &heldConn{c: c}, nil
}

// openManyHeld opens n held connections with the given parallelism. On error
// it closes what it opened.
func openManyHeld(ctx context.Context, addr, path string, n, parallel int) ([]*heldConn, error) {
	ctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	conns := make([]*heldConn, n)
	idx := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range parallel {
		wg.Go(func() {
			for i := range idx {
				rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
				h, err := openHeld(rctx, addr, path)
				rcancel()
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("connection %d of %d: %w", i+1, n, err)
					}
					mu.Unlock()
					cancel()
					continue
				}
				conns[i] = h
			}
		})
	}
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		idx <- i
	}
	close(idx)
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		closeHeld(conns)
		return nil, firstErr
	}
	return conns, nil
}

func closeHeld(conns []*heldConn) {
	for _, h := range conns {
		if h != nil {
			h.c.Close()
		}
	}
}

// port returns the numeric port of "host:port".
func port(addr string) (int, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, fmt.Errorf("address %q: %w", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return 0, fmt.Errorf("address %q: port: %w", addr, err)
	}
	return n, nil
}
