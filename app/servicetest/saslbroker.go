package servicetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SignIns is the broker's side of SASL/OAUTHBEARER or AWS_MSK_IAM on a kfake cluster. kfake
// implements only PLAIN and SCRAM (its SASLHandshake refuses any other mechanism), so its
// control functions take the handshake for mechanism and answer each SASLAuthenticate with
// check, which reads the client's bytes and returns the session's lifetime (0: unlimited) or
// why it is refused. Every exchange is recorded. The cluster must not use kfake.EnableSASL:
// kfake would then refuse the connection after an exchange it did not run itself.
type SignIns struct {
	mu        sync.Mutex
	exchanges []Exchange
}

// Exchange is one SASLAuthenticate the broker answered.
type Exchange struct {
	Auth []byte
	Err  error
}

// NewSignIns installs the broker's side of mechanism on c.
func NewSignIns(c *kfake.Cluster, mechanism string, check func(auth []byte) (time.Duration, error)) *SignIns {
	s := &SignIns{}
	c.ControlKey(int16(kmsg.SASLHandshake), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := r.(*kmsg.SASLHandshakeRequest)
		resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
		resp.SupportedMechanisms = []string{mechanism}
		if req.Mechanism != mechanism {
			resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		}
		return resp, nil, true
	})
	c.ControlKey(int16(kmsg.SASLAuthenticate), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := r.(*kmsg.SASLAuthenticateRequest)
		resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
		lifetime, err := check(req.SASLAuthBytes)
		s.mu.Lock()
		s.exchanges = append(s.exchanges, Exchange{Auth: slices.Clone(req.SASLAuthBytes), Err: err})
		s.mu.Unlock()
		if err != nil {
			resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
			msg := err.Error()
			resp.ErrorMessage = &msg
			return resp, nil, true
		}
		resp.SessionLifetimeMillis = lifetime.Milliseconds()
		if mechanism == "AWS_MSK_IAM" {
			// MSK answers a sign-in it accepts with its version and a request id.
			resp.SASLAuthBytes = []byte(`{"version":"2020_10_22","request-id":"kfake"}`)
		}
		return resp, nil, true
	})
	return s
}

// Exchanges are the exchanges so far.
func (s *SignIns) Exchanges() []Exchange {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.exchanges)
}

// RFC 7628, section 3.1: the GS2 header, and the key/value pairs each ended by %x01.
var (
	gs2Header   = regexp.MustCompile(`^[ny],(a=[^,\x01]*)?,$`)
	oauthKey    = regexp.MustCompile(`^[A-Za-z]+$`)
	oauthValue  = regexp.MustCompile(`^[\x21-\x7E \t\r\n]*$`)
	bearerToken = regexp.MustCompile(`^[Bb][Ee][Aa][Rr][Ee][Rr] +([A-Za-z0-9\-._~+/]+=*)$`)
)

// ParseOAuthBearer reads an OAUTHBEARER client's initial response as RFC 7628 (section 3.1)
// defines it: gs2-header %x01 *(key "=" value %x01) %x01, with auth=Bearer <token> among the
// pairs. It returns the token and the other pairs, the SASL extensions.
func ParseOAuthBearer(b []byte) (token string, extensions map[string]string, err error) {
	header, rest, ok := strings.Cut(string(b), "\x01")
	if !ok || !gs2Header.MatchString(header) {
		return "", nil, fmt.Errorf("no GS2 header (n,, or n,a=...,) before the first %%x01: %q", b)
	}
	body, ok := strings.CutSuffix(rest, "\x01\x01")
	if !ok && rest != "\x01" {
		return "", nil, fmt.Errorf("the pairs do not end with %%x01%%x01: %q", b)
	}
	extensions = map[string]string{}
	if ok {
		for _, kv := range strings.Split(body, "\x01") {
			key, value, ok := strings.Cut(kv, "=")
			if !ok || !oauthKey.MatchString(key) || !oauthValue.MatchString(value) {
				return "", nil, fmt.Errorf("%q is not key=value as RFC 7628 defines them", kv)
			}
			if _, twice := extensions[key]; twice {
				return "", nil, fmt.Errorf("%q is given twice", key)
			}
			extensions[key] = value
		}
	}
	auth, ok := extensions["auth"]
	delete(extensions, "auth")
	m := bearerToken.FindStringSubmatch(auth)
	if !ok || m == nil {
		return "", nil, fmt.Errorf("no auth=Bearer <token> pair")
	}
	return m[1], extensions, nil
}

// emptySHA256 is the hash of the empty payload MSK's sign-in signs.
var emptySHA256 = func() string { h := sha256.Sum256(nil); return hex.EncodeToString(h[:]) }()

// VerifyMSKIAM checks an AWS_MSK_IAM sign-in as MSK does, from AWS's description of the
// payload (aws-msk-iam-auth): a JSON object of version 2020_10_22, the broker's host, a user
// agent, the action kafka-cluster:Connect, and the query parameters of a SigV4 presigned
// GET https://<host>/?Action=kafka-cluster%3AConnect (x-amz-algorithm, -credential, -date,
// -expires, -signedheaders, -security-token with session credentials, -signature), keys in
// lower case. The signature is computed again with the AWS SDK's SigV4 signer from the
// credentials secretOf gives for the payload's access key. It returns the payload.
func VerifyMSKIAM(payload []byte, host, region string, secretOf func(accessKey string) (aws.Credentials, bool)) (map[string]string, error) {
	var p map[string]string
	if err := json.Unmarshal(payload, &p); err != nil {
		return nil, fmt.Errorf("not a JSON object of strings: %w", err)
	}
	accessKey, scope, _ := strings.Cut(p["x-amz-credential"], "/")
	creds, ok := secretOf(accessKey)
	if !ok {
		return p, fmt.Errorf("unknown access key %q", accessKey)
	}
	signed, err := time.Parse("20060102T150405Z", p["x-amz-date"])
	if err != nil {
		return p, fmt.Errorf("x-amz-date %q: %w", p["x-amz-date"], err)
	}
	want := map[string]string{
		"version":             "2020_10_22",
		"host":                host,
		"action":              "kafka-cluster:Connect",
		"x-amz-algorithm":     "AWS4-HMAC-SHA256",
		"x-amz-credential":    accessKey + "/" + signed.Format("20060102") + "/" + region + "/kafka-cluster/aws4_request",
		"x-amz-expires":       "900",
		"x-amz-signedheaders": "host",
	}
	if scope == "" {
		return p, fmt.Errorf("x-amz-credential %q has no scope", p["x-amz-credential"])
	}
	// The signature MSK expects: the SDK's presigned URL for the same request and time.
	u := url.URL{Scheme: "https", Host: host, Path: "/", RawQuery: url.Values{"Action": {"kafka-cluster:Connect"}, "X-Amz-Expires": {"900"}}.Encode()}
	req, err := http.NewRequest(http.MethodGet, u.String(), nil)
	if err != nil {
		return p, err
	}
	presigned, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds, req, emptySHA256, "kafka-cluster", region, signed)
	if err != nil {
		return p, err
	}
	pu, err := url.Parse(presigned)
	if err != nil {
		return p, err
	}
	for k, v := range pu.Query() {
		if k := strings.ToLower(k); k != "action" {
			want[k] = v[0]
		}
	}
	if creds.SessionToken != "" && want["x-amz-security-token"] != creds.SessionToken {
		return p, fmt.Errorf("the SDK's presigned URL has no session token")
	}
	for k, v := range want {
		if p[k] != v {
			return p, fmt.Errorf("%s is %q, want %q", k, p[k], v)
		}
	}
	for k := range p {
		if _, ok := want[k]; !ok && k != "user-agent" {
			return p, fmt.Errorf("unexpected key %q", k)
		}
	}
	if p["user-agent"] == "" {
		return p, fmt.Errorf("no user-agent")
	}
	if age := time.Since(signed); age > 15*time.Minute || age < -5*time.Minute {
		return p, fmt.Errorf("signed %s ago, outside X-Amz-Expires", age)
	}
	return p, nil
}
