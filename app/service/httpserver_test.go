package service

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// serve runs newHTTPServer(h, l) on an ephemeral port until the test ends.
func serve(t *testing.T, l httpLimits) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/body", func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) })
	// /big is a scrape far larger than the socket buffers, so a client that never reads blocks it.
	mux.HandleFunc("/big", func(w http.ResponseWriter, _ *http.Request) {
		chunk := []byte(strings.Repeat("x", 64<<10))
		for i := 0; i < 1024; i++ {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newHTTPServer(mux, l)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// closedWithin reads until the server closes c, and fails if that takes longer than limit.
func closedWithin(t *testing.T, c net.Conn, limit time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(limit))
	_, err := io.Copy(io.Discard, c)
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		t.Fatalf("the connection is still open after %v", limit)
	}
}

var shortLimits = httpLimits{
	ReadHeader:     300 * time.Millisecond,
	Read:           600 * time.Millisecond,
	Write:          600 * time.Millisecond,
	Idle:           300 * time.Millisecond,
	MaxHeaderBytes: defaultHTTPLimits.MaxHeaderBytes,
}

func TestHTTPClosesAnUnfinishedHeader(t *testing.T) {
	c := dial(t, serve(t, shortLimits))
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	closedWithin(t, c, 3*time.Second)
}

func TestHTTPClosesAnIdleKeepAlive(t *testing.T) {
	c := dial(t, serve(t, shortLimits))
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("first request: %v %v", resp, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	closedWithin(t, c, 3*time.Second) // sends nothing more: closed after the idle timeout
}

func TestHTTPClosesASlowBody(t *testing.T) {
	c := dial(t, serve(t, shortLimits))
	if _, err := io.WriteString(c, "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// 2 bytes a second would take 500 s; the read timeout ends it. A write fails once the
	// server has closed the connection.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := io.WriteString(c, "ab"); err != nil {
			return
		}
		time.Sleep(250 * time.Millisecond)
		_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
			return // the server answered and closed, or reset the connection
		}
	}
	t.Fatal("a body sent at 2 B/s is still being read after 5 s")
}

func TestHTTPClosesAClientThatNeverReads(t *testing.T) {
	c := dial(t, serve(t, shortLimits))
	if _, err := io.WriteString(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // never reads while the write timeout passes
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _ := io.Copy(io.Discard, c)
	if n >= 64<<20 {
		t.Fatalf("the whole 64 MiB answer was kept for a client that did not read: %d bytes", n)
	}
}

// The service's own header limit refuses a header of the size that, unfinished on 100
// connections, took 238 MiB, while a scrape's headers pass.
func TestHTTPRefusesALargeHeader(t *testing.T) {
	if defaultHTTPLimits.MaxHeaderBytes >= 1<<20 {
		t.Fatalf("MaxHeaderBytes %d is Go's default or more", defaultHTTPLimits.MaxHeaderBytes)
	}
	addr := serve(t, defaultHTTPLimits)
	for _, tc := range []struct {
		header int
		status int
	}{{2 << 10, http.StatusOK}, {64 << 10, http.StatusRequestHeaderFieldsTooLarge}} {
		c := dial(t, addr)
		req := "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + strings.Repeat("a", tc.header) + "\r\n\r\n"
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != tc.status {
			t.Errorf("a %d-byte header: %v %v, want %d", tc.header, resp, err, tc.status)
		}
	}
}

func isTimeout(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) && netErr.Timeout()
}
