package service

import (
	"net/http"
	"time"
)

// httpLimits bound what one client of /metrics, /healthz and /readyz can hold: a connection, a
// goroutine and its buffers. Every request the service serves is a GET without a body from a
// probe or a Prometheus scrape, answered in well under a second (a /readyz waits at most 2 s
// for a broker), so the limits sit far above what these need and far below what lets a slow or
// hostile client keep a connection for ever.
type httpLimits struct {
	// ReadHeader bounds the time to send a request's headers (a client that never finishes).
	ReadHeader time.Duration
	// Read bounds the time to send a whole request, body included (a body at 2 B/s).
	Read time.Duration
	// Write bounds the time from the end of the request to the end of the answer (a client
	// that never reads a scrape).
	Write time.Duration
	// Idle bounds how long a keep-alive connection waits for its next request.
	Idle time.Duration
	// MaxHeaderBytes bounds a request's headers. A probe's or a scrape's are a few hundred
	// bytes; Go's default of 1 MiB let 100 connections with unfinished headers take RSS from
	// 19 to 238 MiB.
	MaxHeaderBytes int
}

// defaultHTTPLimits are the service's: docs/security.md tells what they bound.
var defaultHTTPLimits = httpLimits{
	ReadHeader:     5 * time.Second,
	Read:           10 * time.Second,
	Write:          30 * time.Second,
	Idle:           30 * time.Second,
	MaxHeaderBytes: 16 << 10,
}

// newHTTPServer is the server of h with limits l.
func newHTTPServer(h http.Handler, l httpLimits) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeader,
		ReadTimeout:       l.Read,
		WriteTimeout:      l.Write,
		IdleTimeout:       l.Idle,
		MaxHeaderBytes:    l.MaxHeaderBytes,
	}
}
