package kafkaclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pingpong/pingpong/app/config"
	"github.com/pingpong/pingpong/app/signin"
)

// Check connects to the cluster once with k's TLS and SASL settings, within k.Timeout, and says
// plainly what is wrong when it cannot: the broker's certificate is not trusted, the broker
// refused ours, the credentials were refused, or nothing listens. The service runs it before
// anything else, so that a misconfiguration stops it at start-up with an error that names the
// setting to fix, rather than leaving its clients retrying in the background.
func Check(ctx context.Context, k config.Kafka) error {
	opts, err := Options(k)
	if err != nil {
		return err
	}
	var sasl saslWatch
	cl, err := kgo.NewClient(append(opts, kgo.WithHooks(&sasl))...)
	if err != nil {
		return fmt.Errorf("creating the Kafka client: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, k.Timeout)
	defer cancel()
	// Ping asks each broker for metadata over a connection that has done the TLS handshake and
	// the SASL exchange, trying each once: what fails is the configuration, not the weather.
	if err := cl.Ping(ctx); err != nil {
		if sasl.failed.Load() {
			err = &saslError{err}
		}
		return Explain(k, err)
	}
	return nil
}

// saslWatch sees the SASL exchange fail. A broker that refuses the credentials may say so
// (SASL_AUTHENTICATION_FAILED) or just close the connection, which is only an EOF without it.
type saslWatch struct{ failed atomic.Bool }

func (w *saslWatch) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err != nil && (key == int16(kmsg.SASLHandshake) || key == int16(kmsg.SASLAuthenticate)) {
		w.failed.Store(true)
	}
}

// saslError marks an error of the SASL exchange.
type saslError struct{ err error }

func (e *saslError) Error() string { return "during the SASL exchange: " + e.err.Error() }
func (e *saslError) Unwrap() error { return e.err }

// Explain turns an error from reaching the cluster into one that says which settings to look at.
// It never includes the password.
func Explain(k config.Kafka, err error) error {
	where := "KAFKA_BROKERS=" + k.Brokers
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		record   tls.RecordHeaderError
		firstEOF *kgo.ErrFirstReadEOF
		op       *net.OpError
		exchange *saslError
		signIn   *signin.Error
	)
	switch {
	case errors.As(err, &signIn):
		return fmt.Errorf("Kafka authentication failed before the broker at %s was asked: %w", where, signIn)
	case errors.Is(err, kerr.UnsupportedSaslMechanism):
		return fmt.Errorf("Kafka authentication failed: the broker at %s does not accept KAFKA_SASL_MECHANISM=%s: %w", where, k.SASL.Mechanism, err)
	case (errors.Is(err, kerr.SaslAuthenticationFailed) || errors.Is(err, kerr.IllegalSaslState) || errors.As(err, &exchange)) &&
		strings.EqualFold(k.SASL.Mechanism, config.SASLOAuthBearer):
		return fmt.Errorf("Kafka authentication failed: the broker at %s refused the OAUTHBEARER token of client KAFKA_SASL_OAUTH_CLIENT_ID=%q from KAFKA_SASL_OAUTH_TOKEN_URL=%s; check that the broker trusts that issuer (its JWKS or introspection endpoint, the audience), KAFKA_SASL_OAUTH_SCOPE and KAFKA_SASL_OAUTH_EXTENSIONS: %w",
			where, k.SASL.OAuth.ClientID, k.SASL.OAuth.TokenURL, err)
	case (errors.Is(err, kerr.SaslAuthenticationFailed) || errors.Is(err, kerr.IllegalSaslState) || errors.As(err, &exchange)) &&
		strings.EqualFold(k.SASL.Mechanism, config.SASLAWSMSKIAM):
		return fmt.Errorf("Kafka authentication failed: the broker at %s refused the AWS_MSK_IAM sign-in; check that the IAM role the AWS SDK found (IRSA's AWS_ROLE_ARN, the EKS Pod Identity association) may kafka-cluster:Connect to the cluster, and AWS_REGION: %w", where, err)
	case errors.Is(err, kerr.SaslAuthenticationFailed) || errors.Is(err, kerr.IllegalSaslState) || errors.As(err, &exchange):
		return fmt.Errorf("Kafka authentication failed: the broker at %s refused %s user %q; check KAFKA_SASL_USERNAME, the password (KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE) and that the broker accepts the mechanism: %w",
			where, strings.ToUpper(k.SASL.Mechanism), k.SASL.Username, err)
	case errors.As(err, &hostname):
		return fmt.Errorf("TLS verification failed: the broker's certificate at %s is not valid for the name connected to; set KAFKA_TLS_SERVER_NAME to a name it is for: %w", where, err)
	case errors.As(err, &unknown) || errors.As(err, &invalid) || errors.As(err, &verify):
		return fmt.Errorf("TLS verification failed: the broker's certificate at %s is not signed by a trusted CA; set KAFKA_TLS_CA_FILE to the CA that signs it: %w", where, err)
	case errors.As(err, &record):
		return fmt.Errorf("TLS handshake failed: the broker at %s does not speak TLS on that port; unset the KAFKA_TLS_ settings or use the broker's TLS listener: %w", where, err)
	case errors.As(err, &op) && op.Op == "remote error":
		return fmt.Errorf("TLS handshake failed: the broker at %s refused the connection (%v); if it requires mutual TLS, set KAFKA_TLS_CERT_FILE and KAFKA_TLS_KEY_FILE to a client certificate it trusts: %w", where, op.Err, err)
	case errors.As(err, &firstEOF):
		return fmt.Errorf("the broker at %s closed the connection at once: it may require TLS (KAFKA_TLS_ENABLED) or SASL (KAFKA_SASL_MECHANISM), or expect neither: %w", where, err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("no broker listens at %s: %w", where, err)
	case errors.Is(err, context.DeadlineExceeded) && k.TLS.On():
		return fmt.Errorf("no broker answered at %s within KAFKA_TIMEOUT=%s; with TLS on, is that port the broker's TLS listener? %w", where, k.Timeout, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("no broker answered at %s within KAFKA_TIMEOUT=%s: %w", where, k.Timeout, err)
	}
	return fmt.Errorf("cannot reach the Kafka cluster at %s: %w", where, err)
}
