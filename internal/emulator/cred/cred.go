// Package cred holds the access keys and STS tokens the emulated services
// accept, shared by the emulated VPC API and Log Service.
package cred

import (
	"sync"
	"time"
)

// Credential is one access key, with an STS token when SecurityToken is set.
type Credential struct {
	AccessKeyID     string    `json:"accessKeyId"`
	AccessKeySecret string    `json:"accessKeySecret"`
	SecurityToken   string    `json:"securityToken,omitempty"`
	Expires         time.Time `json:"expires,omitzero"` // zero: never
	// Account is the account the key belongs to: an emulated service that
	// holds several accounts answers a call for this account only. "" is the
	// service's default account.
	Account string `json:"account,omitempty"`
}

// Problem is why a credential was refused.
type Problem int

const (
	OK              Problem = iota
	UnknownKey              // no such access key id
	MissingToken            // the key is an STS key but no token came
	MalformedToken          // a token came that no key has
	TokenMismatch           // the token belongs to another key
	TokenExpired            // the token's time is over
	UnexpectedToken         // a token came with a long-term key
)

// Store is a goroutine-safe set of credentials.
type Store struct {
	mu    sync.RWMutex
	byKey map[string]Credential
	now   func() time.Time
}

// NewStore returns a store holding creds.
func NewStore(creds ...Credential) *Store {
	s := &Store{byKey: map[string]Credential{}, now: time.Now}
	for _, c := range creds {
		s.Add(c)
	}
	return s
}

// Add adds or replaces a credential.
func (s *Store) Add(c Credential) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byKey[c.AccessKeyID] = c
}

// SetClock replaces the clock that decides whether a token has expired, so
// that a test can move time on instead of waiting.
func (s *Store) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// Lookup returns the credential of accessKeyID.
func (s *Store) Lookup(accessKeyID string) (Credential, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.byKey[accessKeyID]
	return c, ok
}

// Check finds the secret of accessKeyID and checks the token that came with it.
// The secret is returned whatever the problem, when the key exists, so that a
// caller can verify the signature first, as the real gateways do.
func (s *Store) Check(accessKeyID, token string) (secret string, p Problem) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.byKey[accessKeyID]
	if !ok {
		return "", UnknownKey
	}
	switch {
	case c.SecurityToken == "" && token != "":
		return c.AccessKeySecret, UnexpectedToken
	case c.SecurityToken != "" && token == "":
		return c.AccessKeySecret, MissingToken
	case c.SecurityToken != "" && token != c.SecurityToken:
		for _, other := range s.byKey {
			if other.SecurityToken == token {
				return c.AccessKeySecret, TokenMismatch
			}
		}
		return c.AccessKeySecret, MalformedToken
	case !c.Expires.IsZero() && !s.now().Before(c.Expires):
		return c.AccessKeySecret, TokenExpired
	}
	return c.AccessKeySecret, OK
}
