package config

import (
	"os"
	"strings"
)

// TLS is how to reach Kafka over TLS.
type TLS struct {
	Enabled            bool
	CAFile             string
	CertFile           string
	KeyFile            string
	ServerName         string
	InsecureSkipVerify bool
}

func (t *TLS) addFlags(b binder) {
	b.Bool(&t.Enabled, "KAFKA_TLS_ENABLED", false, "connect to Kafka over TLS (implied by any other KAFKA_TLS_ setting)")
	b.String(&t.CAFile, "KAFKA_TLS_CA_FILE", "", "PEM file of the CAs that sign the brokers' certificates; unset uses the system's")
	b.String(&t.CertFile, "KAFKA_TLS_CERT_FILE", "", "PEM client certificate, for mutual TLS")
	b.String(&t.KeyFile, "KAFKA_TLS_KEY_FILE", "", "PEM key of the client certificate, for mutual TLS")
	b.String(&t.ServerName, "KAFKA_TLS_SERVER_NAME", "", "name to verify the brokers' certificates against; unset uses each broker's host")
	b.Bool(&t.InsecureSkipVerify, "KAFKA_TLS_INSECURE_SKIP_VERIFY", false, "do not verify the brokers' certificates (never in production)")
}

// On tells whether TLS is to be used.
func (t TLS) On() bool {
	return t.Enabled || t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "" || t.InsecureSkipVerify
}

func (t TLS) validate() error {
	if (t.CertFile == "") != (t.KeyFile == "") {
		return invalid("KAFKA_TLS_KEY_FILE", t.KeyFile, "KAFKA_TLS_CERT_FILE and KAFKA_TLS_KEY_FILE go together")
	}
	for env, path := range map[string]string{"KAFKA_TLS_CA_FILE": t.CAFile, "KAFKA_TLS_CERT_FILE": t.CertFile, "KAFKA_TLS_KEY_FILE": t.KeyFile} {
		if path == "" {
			continue
		}
		if _, err := os.Stat(path); err != nil {
			return invalid(env, path, "cannot be read: "+err.Error())
		}
	}
	return nil
}

// SASL mechanisms.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// SASL is how to authenticate to Kafka.
type SASL struct {
	Mechanism    string
	Username     string
	Password     string
	PasswordFile string
}

func (s *SASL) addFlags(b binder) {
	b.String(&s.Mechanism, "KAFKA_SASL_MECHANISM", "", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; unset means no SASL")
	b.String(&s.Username, "KAFKA_SASL_USERNAME", "", "SASL user name")
	b.String(&s.Password, "KAFKA_SASL_PASSWORD", "", "SASL password; prefer the variable or KAFKA_SASL_PASSWORD_FILE to the flag, which other users can see in the process list")
	b.String(&s.PasswordFile, "KAFKA_SASL_PASSWORD_FILE", "", "file holding the SASL password (a mounted Kubernetes secret)")
}

// Secret is the password, read from PasswordFile when that is set.
func (s SASL) Secret() (string, error) {
	if s.PasswordFile == "" {
		return s.Password, nil
	}
	b, err := os.ReadFile(s.PasswordFile)
	if err != nil {
		return "", invalid("KAFKA_SASL_PASSWORD_FILE", s.PasswordFile, "cannot be read: "+err.Error())
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

func (s SASL) validate() error {
	switch strings.ToUpper(s.Mechanism) {
	case "":
		return nil
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
	default:
		return invalid("KAFKA_SASL_MECHANISM", s.Mechanism, "must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
	}
	if s.Username == "" {
		return invalid("KAFKA_SASL_USERNAME", "", "must be set with KAFKA_SASL_MECHANISM")
	}
	if s.Password != "" && s.PasswordFile != "" {
		// The value is a secret: the error shows the file's name only.
		return invalid("KAFKA_SASL_PASSWORD_FILE", s.PasswordFile, "set either KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE, not both")
	}
	if s.Password == "" && s.PasswordFile == "" {
		return invalid("KAFKA_SASL_PASSWORD", "", "must be set (or KAFKA_SASL_PASSWORD_FILE) with KAFKA_SASL_MECHANISM")
	}
	_, err := s.Secret()
	return err
}
