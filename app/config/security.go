package config

import (
	"fmt"
	"net/url"
	"os"
	"regexp"
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
	// SASLOAuthBearer signs in with an OAuth 2.0 access token got by the client-credentials
	// grant (Strimzi's OAuth listeners, Confluent Cloud, Azure Event Hubs).
	SASLOAuthBearer = "OAUTHBEARER"
	// SASLAWSMSKIAM signs in to Amazon MSK with AWS credentials from the SDK's default chain.
	SASLAWSMSKIAM = "AWS_MSK_IAM"
)

const mechanisms = "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER or AWS_MSK_IAM"

// SASL is how to authenticate to Kafka.
type SASL struct {
	Mechanism    string
	Username     string
	Password     string
	PasswordFile string
	OAuth        OAuth
	// AWSRegion is AWS_REGION: the region of the MSK cluster, for signing when a broker's host
	// name holds none and for the AWS SDK's STS calls (IRSA).
	AWSRegion string
}

// OAuth is the OAuth 2.0 client-credentials grant of SASL/OAUTHBEARER.
type OAuth struct {
	TokenURL         string
	ClientID         string
	ClientSecretFile string
	Scope            string
	Extensions       string
}

func (s *SASL) addFlags(b binder) {
	b.String(&s.Mechanism, "KAFKA_SASL_MECHANISM", "", "SASL mechanism: "+mechanisms+"; unset means no SASL")
	b.String(&s.Username, "KAFKA_SASL_USERNAME", "", "SASL user name (PLAIN, SCRAM)")
	b.String(&s.Password, "KAFKA_SASL_PASSWORD", "", "SASL password (PLAIN, SCRAM); prefer the variable or KAFKA_SASL_PASSWORD_FILE to the flag, which other users can see in the process list")
	b.String(&s.PasswordFile, "KAFKA_SASL_PASSWORD_FILE", "", "file holding the SASL password (a mounted Kubernetes secret)")
	b.String(&s.OAuth.TokenURL, "KAFKA_SASL_OAUTH_TOKEN_URL", "", "OAUTHBEARER: the OAuth 2.0 token endpoint that grants client credentials")
	b.String(&s.OAuth.ClientID, "KAFKA_SASL_OAUTH_CLIENT_ID", "", "OAUTHBEARER: the OAuth 2.0 client id")
	b.String(&s.OAuth.ClientSecretFile, "KAFKA_SASL_OAUTH_CLIENT_SECRET_FILE", "", "OAUTHBEARER: file holding the client secret (a mounted Kubernetes secret), read at each token request")
	b.String(&s.OAuth.Scope, "KAFKA_SASL_OAUTH_SCOPE", "", "OAUTHBEARER: scopes asked for, separated by spaces; unset asks for none")
	b.String(&s.OAuth.Extensions, "KAFKA_SASL_OAUTH_EXTENSIONS", "", "OAUTHBEARER: SASL extensions sent with the token, key=value,key=value (Confluent Cloud: logicalCluster and identityPoolId)")
	b.String(&s.AWSRegion, "AWS_REGION", "", "AWS_MSK_IAM: region of the cluster, for signing when a broker's host name holds none and for the AWS SDK (EKS sets it); the standard AWS variable")
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

// ClientSecret is the OAuth client secret, read from its file (a trailing newline is not part of
// it). It is read at each token request, so a rotated Kubernetes secret is used without a restart.
func (o OAuth) ClientSecret() (string, error) {
	b, err := os.ReadFile(o.ClientSecretFile)
	if err != nil {
		return "", invalid("KAFKA_SASL_OAUTH_CLIENT_SECRET_FILE", o.ClientSecretFile, "cannot be read: "+err.Error())
	}
	secret := strings.TrimRight(string(b), "\r\n")
	if secret == "" {
		return "", invalid("KAFKA_SASL_OAUTH_CLIENT_SECRET_FILE", o.ClientSecretFile, "is empty")
	}
	return secret, nil
}

// Scopes are the scopes of KAFKA_SASL_OAUTH_SCOPE.
func (o OAuth) Scopes() []string { return strings.Fields(o.Scope) }

// extensionKey and extensionValue are RFC 7628's (section 3.1) key and value, as Kafka checks
// them; "auth" is the token's own key.
var (
	extensionKey   = regexp.MustCompile(`^[A-Za-z]+$`)
	extensionValue = regexp.MustCompile(`^[\x21-\x7E \t\r\n]+$`)
)

// ExtensionMap parses KAFKA_SASL_OAUTH_EXTENSIONS.
func (o OAuth) ExtensionMap() (map[string]string, error) {
	if strings.TrimSpace(o.Extensions) == "" {
		return nil, nil
	}
	m := map[string]string{}
	for _, kv := range strings.Split(o.Extensions, ",") {
		key, value, ok := strings.Cut(strings.TrimSpace(kv), "=")
		switch {
		case !ok || !extensionKey.MatchString(key):
			return nil, invalid("KAFKA_SASL_OAUTH_EXTENSIONS", o.Extensions, fmt.Sprintf("%q is not key=value with a key of letters only", kv))
		case key == "auth":
			return nil, invalid("KAFKA_SASL_OAUTH_EXTENSIONS", o.Extensions, `"auth" is the token's own key, not an extension`)
		case !extensionValue.MatchString(value):
			return nil, invalid("KAFKA_SASL_OAUTH_EXTENSIONS", o.Extensions, fmt.Sprintf("the value of %q is empty or holds characters RFC 7628 does not allow", key))
		}
		if _, twice := m[key]; twice {
			return nil, invalid("KAFKA_SASL_OAUTH_EXTENSIONS", o.Extensions, fmt.Sprintf("%q is given twice", key))
		}
		m[key] = value
	}
	return m, nil
}

// set lists the settings with their values.
func (o OAuth) set() [][2]string {
	return [][2]string{
		{"KAFKA_SASL_OAUTH_TOKEN_URL", o.TokenURL}, {"KAFKA_SASL_OAUTH_CLIENT_ID", o.ClientID},
		{"KAFKA_SASL_OAUTH_CLIENT_SECRET_FILE", o.ClientSecretFile}, {"KAFKA_SASL_OAUTH_SCOPE", o.Scope},
		{"KAFKA_SASL_OAUTH_EXTENSIONS", o.Extensions},
	}
}

func (o OAuth) validate() error {
	u, err := url.Parse(o.TokenURL)
	switch {
	case o.TokenURL == "":
		return invalid("KAFKA_SASL_OAUTH_TOKEN_URL", "", "must be set with KAFKA_SASL_MECHANISM=OAUTHBEARER")
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		return invalid("KAFKA_SASL_OAUTH_TOKEN_URL", o.TokenURL, "must be an http or https URL")
	case u.User != nil:
		// The client authenticates with its id and secret; credentials in the URL would be
		// logged with it.
		return invalid("KAFKA_SASL_OAUTH_TOKEN_URL", u.Redacted(), "must not hold a user or password")
	case o.ClientID == "":
		return invalid("KAFKA_SASL_OAUTH_CLIENT_ID", "", "must be set with KAFKA_SASL_MECHANISM=OAUTHBEARER")
	case o.ClientSecretFile == "":
		return invalid("KAFKA_SASL_OAUTH_CLIENT_SECRET_FILE", "", "must be set with KAFKA_SASL_MECHANISM=OAUTHBEARER")
	}
	if _, err := o.ClientSecret(); err != nil {
		return err
	}
	_, err = o.ExtensionMap()
	return err
}

// awsRegion is a region name such as eu-west-1 or us-gov-west-1.
var awsRegion = regexp.MustCompile(`^[a-z]+(-[a-z0-9]+)+-[0-9]+$`)

func (s SASL) validate() error {
	mechanism := strings.ToUpper(s.Mechanism)
	switch mechanism {
	case "", SASLPlain, SASLScramSHA256, SASLScramSHA512, SASLOAuthBearer, SASLAWSMSKIAM:
	default:
		return invalid("KAFKA_SASL_MECHANISM", s.Mechanism, "must be "+mechanisms)
	}
	if mechanism == "" {
		return nil // SASL off: its other settings are ignored, as they always were
	}
	userPassword := mechanism == SASLPlain || mechanism == SASLScramSHA256 || mechanism == SASLScramSHA512
	// A setting the chosen mechanism does not use is a mistake to point out, not to ignore.
	if !userPassword {
		for _, set := range [][2]string{{"KAFKA_SASL_USERNAME", s.Username}, {"KAFKA_SASL_PASSWORD_FILE", s.PasswordFile}, {"KAFKA_SASL_PASSWORD", s.Password}} {
			if set[1] != "" {
				return invalid(set[0], shown(set[0], set[1]), "is used only with KAFKA_SASL_MECHANISM=PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
			}
		}
	}
	if mechanism != SASLOAuthBearer {
		for _, set := range s.OAuth.set() {
			if set[1] != "" {
				return invalid(set[0], set[1], "is used only with KAFKA_SASL_MECHANISM=OAUTHBEARER")
			}
		}
	}
	switch mechanism {
	case SASLAWSMSKIAM:
		// AWS_REGION is the standard variable, set on many machines: it is checked only when
		// it is used.
		if s.AWSRegion != "" && !awsRegion.MatchString(s.AWSRegion) {
			return invalid("AWS_REGION", s.AWSRegion, "is not an AWS region name such as eu-west-1")
		}
		return nil
	case SASLOAuthBearer:
		return s.OAuth.validate()
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

// shown is a value as an error may show it: never a password.
func shown(env, value string) string {
	if env == "KAFKA_SASL_PASSWORD" {
		return "(hidden)"
	}
	return value
}
