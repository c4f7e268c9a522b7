package servicetest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	oauth2 "github.com/go-oauth2/oauth2/v4"
	"github.com/go-oauth2/oauth2/v4/errors"
	"github.com/go-oauth2/oauth2/v4/manage"
	"github.com/go-oauth2/oauth2/v4/models"
	"github.com/go-oauth2/oauth2/v4/server"
	"github.com/go-oauth2/oauth2/v4/store"
)

// TokenServer is a real OAuth 2.0 authorization server (go-oauth2) that grants client
// credentials to one client, with tokens of a set lifetime: what Keycloak, Entra ID or Okta are
// to the service. Valid checks a token as a broker's validator would.
type TokenServer struct {
	URL     string
	manager *manage.Manager

	mu       sync.Mutex
	requests int
	scopes   []string
}

// NewTokenServer serves the token endpoint at URL until the test ends.
func NewTokenServer(t testing.TB, clientID, clientSecret string, lifetime time.Duration) *TokenServer {
	t.Helper()
	m := manage.NewDefaultManager()
	m.SetClientTokenCfg(&manage.Config{AccessTokenExp: lifetime})
	m.MustTokenStorage(store.NewMemoryTokenStore())
	clients := store.NewClientStore()
	if err := clients.Set(clientID, &models.Client{ID: clientID, Secret: clientSecret}); err != nil {
		t.Fatal(err)
	}
	m.MapClientStorage(clients)
	cfg := server.NewConfig()
	cfg.AllowedGrantTypes = []oauth2.GrantType{oauth2.ClientCredentials}
	srv := server.NewServer(cfg, m)
	ts := &TokenServer{manager: m}
	// RFC 6749 (2.3.1) form-encodes the id and secret inside Basic auth, as golang.org/x/oauth2
	// sends them; go-oauth2's own handler compares them undecoded.
	srv.ClientInfoHandler = func(r *http.Request) (string, string, error) {
		id, secret, ok := r.BasicAuth()
		if !ok {
			return server.ClientFormHandler(r)
		}
		id, err1 := url.QueryUnescape(id)
		secret, err2 := url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return "", "", errors.ErrInvalidClient
		}
		return id, secret, nil
	}
	srv.ClientScopeHandler = func(tgr *oauth2.TokenGenerateRequest) (bool, error) {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		ts.scopes = append(ts.scopes, tgr.Scope)
		return true, nil
	}
	h := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.mu.Lock()
		ts.requests++
		ts.mu.Unlock()
		_ = srv.HandleTokenRequest(w, r)
	}))
	t.Cleanup(h.Close)
	ts.URL = h.URL + "/token"
	return ts
}

// Requests is how many token requests the endpoint has had.
func (s *TokenServer) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Scopes are the scopes of each token granted, in order.
func (s *TokenServer) Scopes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.scopes...)
}

// Valid tells whether the server accepts token now: it issued it and it has not expired.
func (s *TokenServer) Valid(token string) error {
	_, err := s.manager.LoadAccessToken(context.Background(), token)
	return err
}

// Lifetime is how long token has left.
func (s *TokenServer) Lifetime(token string) (time.Duration, error) {
	ti, err := s.manager.LoadAccessToken(context.Background(), token)
	if err != nil {
		return 0, err
	}
	return time.Until(ti.GetAccessCreateAt().Add(ti.GetAccessExpiresIn())), nil
}
