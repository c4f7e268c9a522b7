// Package service wires the ping-pong service: the Watermill router with its middleware chain on
// the Kafka transport, and the HTTP server for metrics and health.
package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	wmmiddleware "github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/pingpong/pingpong/app/buildinfo"
	"github.com/pingpong/pingpong/app/config"
	"github.com/pingpong/pingpong/app/kafkaclient"
	"github.com/pingpong/pingpong/app/lag"
	"github.com/pingpong/pingpong/app/logging"
	"github.com/pingpong/pingpong/app/telemetry"
	"github.com/pingpong/pingpong/app/transport"
	"github.com/pingpong/pingpong/handlers"
	"github.com/pingpong/pingpong/middleware"
)

// HandlerName names the router's one handler in logs, metrics and the handler_poisoned header.
const HandlerName = "pingpong"

// Service is the running service.
type Service struct {
	cfg      config.Service
	log      *logrus.Entry
	registry *prometheus.Registry
	router   *message.Router
	closers  []func() error // closed in order after the router
	probe    *kgo.Client    // reachability of the cluster, for /readyz
	// assignment follows the consumer group: an instance out of its group is not ready.
	assignment *transport.Assignment
	reach      reachability // the last probe's result, so that /readyz costs the cluster at most one request a second
	listener   net.Listener
	http       *http.Server
}

// Option changes how New builds the service.
type Option func(*settings)

type settings struct {
	tracer    trace.Tracer
	tracerSet bool
}

// WithTracer makes the service's spans with tracer rather than as the OTEL_ variables say (a
// test's span recorder); nil is tracing off, whatever the environment.
func WithTracer(tracer trace.Tracer) Option {
	return func(o *settings) { o.tracer, o.tracerSet = tracer, true }
}

// New builds the service from a validated configuration. It connects to the cluster and opens
// the HTTP listener, so that a broker that cannot be reached or a port in use fails here.
func New(cfg config.Service, logger *logrus.Logger, options ...Option) (s *Service, err error) {
	var o settings
	for _, opt := range options {
		opt(&o)
	}
	s = &Service{cfg: cfg, log: logrus.NewEntry(logger), registry: prometheus.NewRegistry()}
	built := s // the returns below set s to nil
	defer func() {
		if err != nil {
			built.close()
		}
	}()
	s.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildinfo.Collector(),
	)
	wmLogger := logging.Watermill(s.log)
	topics := cfg.Kafka.Topics()

	// A wrong certificate or password stops the service here, with an error that names the
	// setting, rather than in clients that would retry it in the background for ever.
	if err := kafkaclient.Check(context.Background(), cfg.Kafka); err != nil {
		return nil, err
	}
	if cfg.Transport.Name != config.TransportWatermill { // the batch setting is franz-go's
		if err := kafkaclient.CheckBatchBytes(context.Background(), cfg.Kafka, cfg.Transport.ProducerBatchBytes, topics.Succeeded, topics.Failed); err != nil {
			return nil, err
		}
	}
	s.assignment = transport.NewAssignment(s.registry)
	// Answers are keyed by their transaction id: one transaction's answers share a partition.
	// franz-go's own log (connections, retries, group joins) at LOG_LEVEL=debug, as the tools'.
	clientLog := kgo.WithLogger(logging.Kgo(logger))
	kafka, err := transport.New(cfg, wmLogger, s.assignment, transport.KeyFromMetadata(handlers.TransactionIDMetadataKey), clientLog)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, kafka.Close)
	if kafka.Budget != nil {
		s.registry.MustRegister(kafka.Budget.Collectors()...)
	}
	s.registry.MustRegister(kafka.Collectors...)
	sub, rawPub := kafka.Subscriber, kafka.Publisher

	s.router, err = message.NewRouter(message.RouterConfig{CloseTimeout: cfg.ShutdownTimeout}, wmLogger)
	if err != nil {
		return nil, err
	}
	// Watermill's metrics series, resolved once rather than for every message (RouterMetrics says
	// why), outermost so that they time the whole chain.
	routerMetrics, err := middleware.NewRouterMetrics(s.registry, "pingpong", "watermill", HandlerName, sub, rawPub)
	if err != nil {
		return nil, err
	}
	s.router.AddMiddleware(middleware.GrowStack, routerMetrics.Middleware)
	// Traces go to OTEL_EXPORTER_OTLP_ENDPOINT when it is set; without it the trace context of
	// a request is still carried to its answer (middleware.Tracing).
	tracing := &telemetry.Tracing{Tracer: o.tracer}
	if !o.tracerSet {
		if tracing, err = telemetry.New(context.Background(), buildinfo.Version, s.log); err != nil {
			return nil, err
		}
	}
	s.closers = append(s.closers, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return tracing.Shutdown(ctx)
	})
	pub := middleware.TracePublisher(routerMetrics.DecoratePublisher(rawPub), tracing.Tracer)

	handler := handlers.PingPong{MaxRequestBytes: cfg.MaxRequestBytes}
	chain := middleware.Chain(handler.Handle, middleware.ChainConfig{
		Publisher:        pub,
		SucceededTopic:   topics.Succeeded,
		FailedTopic:      topics.Failed,
		Retry:            retryPolicy(cfg.Retry, wmLogger),
		MaxOriginalBytes: cfg.MaxRequestBytes,
		Logger:           s.log,
		Metrics:          middleware.NewMetrics(s.registry),
		Source:           kafka.Source,
		Tracing:          middleware.Tracing{Tracer: tracing.Tracer, ConsumerGroup: cfg.ConsumerGroup},
	})
	// A consumer handler: the chain publishes the answers itself (see package middleware).
	s.router.AddConsumerHandler(HandlerName, topics.Requested, sub, func(msg *message.Message) error {
		_, err := chain(msg)
		return err
	})

	opts, err := kafkaclient.Options(cfg.Kafka)
	if err != nil {
		return nil, err
	}
	if s.probe, err = kgo.NewClient(append(opts, clientLog)...); err != nil {
		return nil, fmt.Errorf("creating the Kafka client: %w", err)
	}
	// Consumer lag on /metrics, measured in the background (package lag says why).
	consumerLag := lag.NewCollector(kadm.NewClient(s.probe), lag.Config{Group: cfg.ConsumerGroup, Topic: topics.Requested,
		UncommittedFromStart: cfg.ConsumerOffset == config.OffsetEarliest, Timeout: cfg.Kafka.Timeout, Logger: s.log})
	s.closers = append(s.closers, consumerLag.Close)
	s.registry.MustRegister(consumerLag)
	if s.listener, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
	}
	s.http = newHTTPServer(s.Handler(), defaultHTTPLimits)
	return s, nil
}

// retryPolicy is Watermill's Retry middleware with the configured backoff.
func retryPolicy(c config.Retry, logger watermill.LoggerAdapter) wmmiddleware.Retry {
	return wmmiddleware.Retry{
		MaxRetries:          c.MaxRetries,
		InitialInterval:     c.InitialInterval,
		MaxInterval:         c.MaxInterval,
		Multiplier:          c.Multiplier,
		RandomizationFactor: c.Jitter,
		MaxElapsedTime:      c.MaxElapsed,
		Logger:              logger, // a line for each retry, so a long retry is visible as it happens
	}
}

// Registry is the service's Prometheus registry.
func (s *Service) Registry() *prometheus.Registry { return s.registry }

// HTTPAddr is the address the HTTP server listens on.
func (s *Service) HTTPAddr() string { return s.listener.Addr().String() }

// Handler serves /metrics, /healthz and /readyz.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	// OpenMetrics when the scraper asks for it (Prometheus does): the only format with exemplars,
	// the trace ids on the latency histograms.
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{Registry: s.registry, EnableOpenMetrics: true}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := s.ready(r.Context()); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	return mux
}

// ready is true while the router runs and a broker answers.
func (s *Service) ready(ctx context.Context) error {
	if !s.router.IsRunning() || s.router.IsClosed() {
		return errors.New("the router is not running")
	}
	if err := s.reach.check(s.probe.Ping); err != nil {
		return fmt.Errorf("no broker answers: %w", err)
	}
	if !s.assignment.Joined() {
		return fmt.Errorf("not in the consumer group %s (yet): the instance answers nothing", s.cfg.ConsumerGroup)
	}
	if err := s.assignment.Readable(); err != nil {
		return err
	}
	return nil
}

// reachability caches whether a broker answers: a burst of /readyz calls (a misconfigured
// probe, a client loop) would otherwise send one Metadata request each to the cluster.
type reachability struct {
	mu      sync.Mutex
	checked time.Time
	err     error
}

// reachabilityTTL is how long a probe's result answers /readyz.
const reachabilityTTL = time.Second

// check returns the last result if younger than reachabilityTTL, else pings once (callers
// meanwhile wait for that ping rather than sending their own).
func (r *reachability) check(ping func(context.Context) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.checked.IsZero() && time.Since(r.checked) < reachabilityTTL {
		return r.err
	}
	// Not the caller's context: a probe cancelled by its caller must not be cached as a failure.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r.err = ping(ctx)
	r.checked = time.Now()
	return r.err
}

// Run runs the router and the HTTP server until ctx is done or one of them fails, then shuts
// down: it stops consuming, lets the requests in flight finish (up to the shutdown timeout),
// commits their offsets, and closes the clients.
func (s *Service) Run(ctx context.Context) error {
	httpErr := make(chan error, 1)
	go func() { httpErr <- s.http.Serve(s.listener) }()
	routerErr := make(chan error, 1)
	routerCtx, stopRouter := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRouter()
	go func() { routerErr <- s.router.Run(routerCtx) }()
	go func() {
		select {
		case <-s.router.Running():
			// One line that says the service is answering, with the address it really listens on
			// (HTTP_ADDR=:0 picks a port).
			s.log.WithField("http", "http://"+s.HTTPAddr()).Info("Ready: answering requests; /metrics, /healthz and /readyz on http")
		case <-routerCtx.Done():
		}
	}()

	var err error
	select {
	case <-ctx.Done():
		s.log.Info("Shutting down: finishing the requests in flight")
	case err = <-routerErr:
		if err == nil { // every handler stopped: their subscription ended (logged by the transport)
			err = errors.New("the router stopped: its subscription ended")
		} else {
			err = fmt.Errorf("the router stopped: %w", err)
		}
	case err = <-httpErr:
		err = fmt.Errorf("the HTTP server stopped: %w", err)
	}
	stopRouter()
	timedOut := false
	if closeErr := s.router.Close(); closeErr != nil {
		if ctx.Err() != nil && isCloseTimeout(closeErr) {
			// A stop that was asked for and ran out of time still stops, and loses nothing:
			// exit 0, as for any other requested stop (docs/architecture.md, "At-least-once").
			timedOut = true
			s.log.WithField("shutdown_timeout", s.cfg.ShutdownTimeout.String()).Warn(
				"Shutdown ran past SHUTDOWN_TIMEOUT: the requests still in flight are not committed, and are answered again after the restart")
		} else {
			err = errors.Join(err, fmt.Errorf("closing the router: %w", closeErr))
		}
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.http.Shutdown(shutdownCtx)
	if closeErr := s.close(); closeErr != nil {
		err = errors.Join(err, closeErr)
	}
	if err == nil && !timedOut {
		s.log.Info("Stopped cleanly")
	}
	return err
}

// isCloseTimeout tells whether err is Watermill's router giving up waiting for its handlers
// (Router.Close returns a plain error, "router close timeout").
func isCloseTimeout(err error) bool {
	return strings.Contains(err.Error(), "router close timeout")
}

func (s *Service) close() error {
	var err error
	for _, c := range s.closers {
		err = errors.Join(err, c())
	}
	s.closers = nil
	if s.probe != nil {
		s.probe.Close()
		s.probe = nil
	}
	if s.listener != nil && s.http == nil {
		_ = s.listener.Close()
	}
	return err
}
