// Package kafkaclient turns the Kafka settings into client options: franz-go options for the
// admin work, readiness, lag and the operator tools, and a Sarama configuration for
// watermill-kafka. Both are built from the same settings, so TLS and SASL are set in one place.
package kafkaclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/pingpong/pingpong/app/config"
	"github.com/pingpong/pingpong/app/signin"
)

// TLSConfig builds the TLS configuration, or nil when TLS is off.
func TLSConfig(t config.TLS) (*tls.Config, error) {
	if !t.On() {
		return nil, nil
	}
	c := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // an explicit, documented operator choice
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, &config.Error{Env: "KAFKA_TLS_CA_FILE", Flag: "kafka-tls-ca-file", Value: t.CAFile, Problem: err.Error()}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &config.Error{Env: "KAFKA_TLS_CA_FILE", Flag: "kafka-tls-ca-file", Value: t.CAFile, Problem: "holds no PEM certificate"}
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, &config.Error{Env: "KAFKA_TLS_CERT_FILE", Flag: "kafka-tls-cert-file", Value: t.CertFile, Problem: "with KAFKA_TLS_KEY_FILE: " + err.Error()}
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// Mechanism builds the SASL mechanism, or nil when SASL is off.
func Mechanism(k config.Kafka) (sasl.Mechanism, error) {
	s := k.SASL
	switch strings.ToUpper(s.Mechanism) {
	case "":
		return nil, nil
	case config.SASLOAuthBearer:
		return oauthMechanism(k)
	case config.SASLAWSMSKIAM:
		return mskIAMMechanism(k)
	}
	password, err := s.Secret()
	if err != nil {
		return nil, err
	}
	switch strings.ToUpper(s.Mechanism) {
	case config.SASLPlain:
		return plain.Auth{User: s.Username, Pass: password}.AsMechanism(), nil
	case config.SASLScramSHA256:
		return scram.Auth{User: s.Username, Pass: password}.AsSha256Mechanism(), nil
	case config.SASLScramSHA512:
		return scram.Auth{User: s.Username, Pass: password}.AsSha512Mechanism(), nil
	}
	return nil, &config.Error{Env: "KAFKA_SASL_MECHANISM", Flag: "kafka-sasl-mechanism", Value: s.Mechanism, Problem: "is not a known mechanism"}
}

// Options are the franz-go options that reach the cluster: seed brokers, timeouts, TLS, SASL.
func Options(k config.Kafka) ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(k.BrokerList()...),
		kgo.DialTimeout(k.Timeout),
		kgo.RetryTimeout(k.Timeout),
		kgo.ClientID("pingpong"),
		// No KIP-714 telemetry push to the brokers: it costs memory (an lz4 writer with 4 MB
		// blocks) and the service exports its metrics to Prometheus itself.
		kgo.DisableClientMetrics(),
	}
	tlsConfig, err := TLSConfig(k.TLS)
	if err != nil {
		return nil, err
	}
	if tlsConfig != nil {
		opts = append(opts, kgo.DialTLSConfig(tlsConfig))
	}
	mechanism, err := Mechanism(k)
	if err != nil {
		return nil, err
	}
	if mechanism != nil {
		opts = append(opts, kgo.SASL(mechanism))
	}
	return opts, nil
}

// Sarama sets the network part of a Sarama configuration: timeouts, TLS, SASL.
func Sarama(k config.Kafka, c *sarama.Config) error {
	c.ClientID = "pingpong"
	c.Net.DialTimeout = k.Timeout
	tlsConfig, err := TLSConfig(k.TLS)
	if err != nil {
		return err
	}
	if tlsConfig != nil {
		c.Net.TLS.Enable = true
		c.Net.TLS.Config = tlsConfig
	}
	switch strings.ToUpper(k.SASL.Mechanism) {
	case "":
		return nil
	case config.SASLOAuthBearer:
		tokens, err := signin.ForOAuth(k.SASL.OAuth, k.Timeout)
		if err != nil {
			return err
		}
		c.Net.SASL.Enable = true
		c.Net.SASL.Mechanism = sarama.SASLTypeOAuth
		c.Net.SASL.TokenProvider = saramaTokens{tokens}
		return nil
	case config.SASLAWSMSKIAM:
		// config.Service.Validate refuses this pair first; this is for other callers.
		return &config.Error{Env: "KAFKA_TRANSPORT", Flag: "kafka-transport", Value: config.TransportWatermill, Problem: "must be franz-go with KAFKA_SASL_MECHANISM=AWS_MSK_IAM"}
	}
	password, err := k.SASL.Secret()
	if err != nil {
		return err
	}
	c.Net.SASL.Enable = true
	c.Net.SASL.User = k.SASL.Username
	c.Net.SASL.Password = password
	switch strings.ToUpper(k.SASL.Mechanism) {
	case config.SASLPlain:
		c.Net.SASL.Mechanism = sarama.SASLTypePlaintext
	case config.SASLScramSHA256:
		c.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
		c.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient {
			return &scramClient{mechanism: scram.Auth{User: k.SASL.Username, Pass: password}.AsSha256Mechanism()}
		}
	case config.SASLScramSHA512:
		c.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
		c.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient {
			return &scramClient{mechanism: scram.Auth{User: k.SASL.Username, Pass: password}.AsSha512Mechanism()}
		}
	}
	return nil
}

// scramClient runs franz-go's SCRAM implementation behind Sarama's SCRAMClient interface, so the
// two clients share one implementation of the exchange.
type scramClient struct {
	mechanism sasl.Mechanism
	session   sasl.Session
	first     []byte
	done      bool
}

func (c *scramClient) Begin(_, _, _ string) error {
	session, first, err := c.mechanism.Authenticate(context.Background(), "")
	if err != nil {
		return fmt.Errorf("starting SCRAM: %w", err)
	}
	c.session, c.first = session, first
	return nil
}

func (c *scramClient) Step(challenge string) (string, error) {
	if c.first != nil {
		first := c.first
		c.first = nil
		return string(first), nil
	}
	done, response, err := c.session.Challenge([]byte(challenge))
	c.done = done
	return string(response), err
}

func (c *scramClient) Done() bool { return c.done }
