package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pingpong/pingpong/app/config"
)

// newHealthcheckCommand checks a running service over HTTP. It is the container's health check,
// which needs no shell or curl in the image.
func newHealthcheckCommand() *cobra.Command {
	var addr string
	var ready bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:           "healthcheck",
		Short:         "Exit 0 if the service on HTTP_ADDR is alive (with --ready: ready), 1 if not",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return &config.Error{Env: "HTTP_ADDR", Flag: "http-addr", Value: addr, Problem: "must be host:port or :port"}
			}
			if host == "" || host == "0.0.0.0" || host == "::" {
				host = "127.0.0.1"
			}
			path := "/healthz"
			if ready {
				path = "/readyz"
			}
			url := "http://" + net.JoinHostPort(host, port) + path
			client := http.Client{Timeout: timeout}
			resp, err := client.Get(url)
			if err != nil {
				return fmt.Errorf("%s: %w", url, err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
			}
			fmt.Fprint(cmd.OutOrStdout(), string(body))
			return nil
		},
	}
	config.AddHTTPAddr(cmd.Flags(), &addr)
	cmd.Flags().BoolVar(&ready, "ready", false, "check /readyz (router running, broker reachable) instead of /healthz")
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "how long to wait for the answer")
	return cmd
}
