// Package signin gets what a cloud Kafka asks for at sign-in: OAuth 2.0 access tokens by the
// client-credentials grant (SASL/OAUTHBEARER) and AWS credentials from the SDK's default chain
// (AWS_MSK_IAM). Each is fetched once, reused by every client of the process and every
// connection, and fetched again before it expires. Its errors name the settings to look at and
// never hold a secret, a token or a credential.
package signin

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/pingpong/pingpong/app/config"
)

// RefreshBefore is how long before its expiry a token is replaced. Kafka brokers end a session
// when its token expires and franz-go signs in again shortly before (KIP-368); a minute's margin
// keeps a fresh token ready for that and for new connections, and is well inside the lifetimes
// providers give (Keycloak's default is 5 minutes, Entra ID's about an hour).
const RefreshBefore = time.Minute

// unknownLifetime is how long a token is used when the endpoint does not say when it expires
// (expires_in is only recommended by RFC 6749).
const unknownLifetime = 5 * time.Minute

// OAuth hands out access tokens of the client-credentials grant.
type OAuth struct {
	tokens     oauth2.TokenSource
	extensions map[string]string
}

type oauthKey struct {
	o       config.OAuth
	timeout time.Duration
}

var oauthSources sync.Map // oauthKey → *OAuth

// ForOAuth is the token source of settings o, shared by every client of the process that signs
// in with the same settings, so that they share one token and one refresh. timeout bounds each
// request to the token endpoint (KAFKA_TIMEOUT).
func ForOAuth(o config.OAuth, timeout time.Duration) (*OAuth, error) {
	key := oauthKey{o, timeout}
	if s, ok := oauthSources.Load(key); ok {
		return s.(*OAuth), nil
	}
	extensions, err := o.ExtensionMap()
	if err != nil {
		return nil, err
	}
	f := &fetcher{o: o, timeout: timeout, client: &http.Client{Timeout: timeout}}
	s := &OAuth{tokens: oauth2.ReuseTokenSourceWithExpiry(nil, f, RefreshBefore), extensions: extensions}
	actual, _ := oauthSources.LoadOrStore(key, s)
	return actual.(*OAuth), nil
}

// Token is a valid access token, fetched when none is held or the one held expires within
// RefreshBefore. Concurrent callers wait for one request to the endpoint.
func (s *OAuth) Token() (string, error) {
	t, err := s.tokens.Token()
	if err != nil {
		return "", err
	}
	return t.AccessToken, nil
}

// Extensions are the SASL extensions of KAFKA_SASL_OAUTH_EXTENSIONS, sent with every token.
func (s *OAuth) Extensions() map[string]string { return s.extensions }

// fetcher asks the token endpoint for a new token each time; oauth2's ReuseTokenSource in front
// of it decides when.
type fetcher struct {
	o       config.OAuth
	timeout time.Duration
	client  *http.Client
}

func (f *fetcher) Token() (*oauth2.Token, error) {
	secret, err := f.o.ClientSecret()
	if err != nil {
		return nil, err
	}
	c := clientcredentials.Config{ClientID: f.o.ClientID, ClientSecret: secret, TokenURL: f.o.TokenURL, Scopes: f.o.Scopes()}
	ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), oauth2.HTTPClient, f.client), f.timeout)
	defer cancel()
	t, err := c.Token(ctx)
	if err != nil {
		return nil, f.explain(err, secret)
	}
	if t.Expiry.IsZero() {
		t.Expiry = time.Now().Add(unknownLifetime)
	}
	return t, nil
}

// Error is a sign-in that failed before Kafka saw it. Its message names the settings to look at
// and holds no secret; the error it came from is not kept, as it may (a response body that
// echoes the request, say).
type Error struct{ msg string }

func (e *Error) Error() string { return e.msg }

// explain turns oauth2's error into one that names the settings, without the response body and
// without the secret in any form the request carried it (plain, form-encoded, in Basic auth).
func (f *fetcher) explain(err error, secret string) error {
	where := fmt.Sprintf("the token endpoint KAFKA_SASL_OAUTH_TOKEN_URL=%s", f.o.TokenURL)
	var (
		msg       string
		retrieve  *oauth2.RetrieveError
		transport *url.Error
	)
	switch {
	case errors.As(err, &retrieve):
		status := "an error"
		if retrieve.Response != nil {
			status = retrieve.Response.Status
		}
		answer := retrieve.ErrorCode
		if retrieve.ErrorDescription != "" {
			answer += ": " + retrieve.ErrorDescription
		}
		if answer == "" {
			answer = "no OAuth error code"
		}
		msg = fmt.Sprintf("OAuth sign-in refused: %s answered %s (%s) to client KAFKA_SASL_OAUTH_CLIENT_ID=%q; check the client id, the secret in KAFKA_SASL_OAUTH_CLIENT_SECRET_FILE and KAFKA_SASL_OAUTH_SCOPE",
			where, status, answer, f.o.ClientID)
	case errors.As(err, &transport):
		msg = fmt.Sprintf("OAuth sign-in failed: cannot reach %s: %v", where, transport.Err)
	default:
		msg = fmt.Sprintf("OAuth sign-in failed at %s: %v", where, err)
	}
	basic := base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(f.o.ClientID) + ":" + url.QueryEscape(secret)))
	for _, form := range []string{secret, url.QueryEscape(secret), basic} {
		msg = strings.ReplaceAll(msg, form, "[secret]")
	}
	return &Error{msg}
}
