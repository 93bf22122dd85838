package auth

import (
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// Config configures a Service. The zero value (with DataDir) is usable.
type Config struct {
	DataDir  string        // signing keys live in DataDir/keys (0700, files 0600), unless KeyRecords is set
	Issuer   string        // "iss" of our tokens; "" means "ledgerfeed"
	Audience string        // "aud" of our tokens and required in every token; "" means "ledgerfeed"
	TokenTTL time.Duration // lifetime of a token; 0 means 1 h

	// ExternalIssuers are other issuers whose tokens are accepted.
	ExternalIssuers []ExternalIssuer

	// MaxConcurrentHashes caps the argon2id hashes running at once (each
	// takes 19 MiB); further callers wait. 0 means 2.
	MaxConcurrentHashes int

	// RatePerSecond and Burst size each client's token bucket for API calls;
	// 0 means 50/s and 100. A negative RatePerSecond turns the limit off.
	RatePerSecond float64
	Burst         int
	// TokenRatePerMinute and TokenBurst size the token endpoint's buckets,
	// one per client id and one per remote address; 0 means 30/min and 10:
	// guessing a 32-byte random secret stays hopeless at that pace, and a
	// script of CLI calls (one token each) is not slowed.
	// A negative TokenRatePerMinute turns the limit off.
	TokenRatePerMinute float64
	TokenBurst         int
	// Nodes is how many ledgerfeed nodes share one store behind a load
	// balancer (0 or 1: one). The limits above are for the whole service:
	// each node's buckets hold 1/Nodes of every rate and burst (a burst at
	// least 1), so with the load spread over the nodes a client gets the
	// configured limit in all, and never more.
	Nodes int

	// AuditQueue is how many audit events may wait to be written; 0 means
	// 4096. When it is full Audit writes synchronously.
	AuditQueue int

	// KeyRecords, when set, keeps the signing keys in these records (a
	// store shared by several nodes: every node signs with the current key
	// and verifies every node's tokens) instead of DataDir/keys.
	KeyRecords ledger.Records
	// KeyPoll is how often a node looks for a rotation made elsewhere; 0
	// means 2 s. It must stay well under Leeway.
	KeyPoll time.Duration

	Now    func() time.Time // nil means time.Now
	Logger *slog.Logger     // nil discards
}

// Leeway is the clock skew allowed when checking exp, nbf and iat.
const Leeway = 30 * time.Second

// keyPoll is the default of Config.KeyPoll: how often issuing checks whether
// another process (or node) has rotated the signing key. It must stay well
// under Leeway: tokens signed with a key just rotated out elsewhere live up
// to the poll interval longer than the key's grace would otherwise allow.
const keyPoll = 2 * time.Second

// Store is what the service keeps in the ledger store: the clients and the
// audit log.
type Store interface {
	ledger.Clients
	ledger.AuditLog
}

// Service issues and verifies tokens and manages client secrets. It is safe
// for concurrent use. Close it before closing the store.
type Service struct {
	store Store
	cfg   Config
	now   func() time.Time
	log   *slog.Logger

	keys      *keyRing
	externals map[string]*externalSet // by issuer
	verified  verifiedTokens          // own tokens already verified (tokencache.go)

	hashSlots chan struct{}
	onHash    func() // test hook: called inside the hashing cap

	apiLimits   *limiterMap
	tokenLimits *limiterMap // keys "c:<client id>" and "a:<address>"

	audit auditWriter
}

// New opens the service on a store. On first start it makes the signing key
// (Ed25519) in DataDir/keys; later it loads the keys there.
func New(store Store, cfg Config) (*Service, error) {
	return newService(store, cfg, nil)
}

// newService is New with a hook called with every path of a file about to
// be opened or looked at (tests check that no token makes it touch another).
func newService(store Store, cfg Config, fileHook func(string)) (*Service, error) {
	if store == nil {
		return nil, fmt.Errorf("auth: no store")
	}
	if cfg.DataDir == "" && cfg.KeyRecords == nil {
		return nil, fmt.Errorf("auth: no data directory")
	}
	if cfg.KeyPoll <= 0 {
		cfg.KeyPoll = keyPoll
	}
	if cfg.KeyPoll > Leeway/2 {
		return nil, fmt.Errorf("auth: key poll interval %v is not well under the clock leeway %v", cfg.KeyPoll, Leeway)
	}
	if cfg.Issuer == "" {
		cfg.Issuer = "ledgerfeed"
	}
	if cfg.Audience == "" {
		cfg.Audience = "ledgerfeed"
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = time.Hour
	}
	if cfg.MaxConcurrentHashes <= 0 {
		cfg.MaxConcurrentHashes = 2
	}
	if cfg.RatePerSecond == 0 {
		cfg.RatePerSecond = 50
	}
	if cfg.Burst <= 0 {
		cfg.Burst = 100
	}
	if cfg.TokenRatePerMinute == 0 {
		cfg.TokenRatePerMinute = 30
	}
	if cfg.TokenBurst <= 0 {
		cfg.TokenBurst = 10
	}
	if cfg.Nodes > 1 {
		n := cfg.Nodes
		cfg.RatePerSecond /= float64(n) // a negative rate (no limit) stays negative
		cfg.TokenRatePerMinute /= float64(n)
		cfg.Burst = max(1, (cfg.Burst+n-1)/n)
		cfg.TokenBurst = max(1, (cfg.TokenBurst+n-1)/n)
	}
	if cfg.AuditQueue <= 0 {
		cfg.AuditQueue = 4096
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	a := &Service{
		store: store, cfg: cfg, now: cfg.Now, log: cfg.Logger,
		hashSlots: make(chan struct{}, cfg.MaxConcurrentHashes),
		externals: map[string]*externalSet{},
	}
	var ks keyStorage = &fileKeys{dir: KeysDir(cfg.DataDir), hook: fileHook}
	if cfg.KeyRecords != nil {
		ks = &recordKeys{recs: cfg.KeyRecords, minCheck: min(minRecordCheck, cfg.KeyPoll)}
	}
	a.keys = &keyRing{
		store: ks, now: cfg.Now, poll: cfg.KeyPoll,
		// A token signed just before a rotation lives TokenTTL; allow for
		// the clock leeway and for a server that noticed a rotation by
		// another process late.
		grace: cfg.TokenTTL + Leeway + cfg.KeyPoll,
	}
	if err := a.keys.open(); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	for _, ext := range cfg.ExternalIssuers {
		if ext.Issuer == "" || ext.JWKSFile == "" {
			return nil, fmt.Errorf("auth: an external issuer needs an issuer and a JWKS file")
		}
		if ext.Issuer == cfg.Issuer {
			return nil, fmt.Errorf("auth: external issuer %q is our own issuer", ext.Issuer)
		}
		if _, dup := a.externals[ext.Issuer]; dup {
			return nil, fmt.Errorf("auth: external issuer %q listed twice", ext.Issuer)
		}
		if ext.Audience == "" {
			ext.Audience = cfg.Audience
		}
		if ext.ClientIDClaim == "" {
			ext.ClientIDClaim = "sub"
		}
		set := &externalSet{cfg: ext, hook: fileHook}
		if err := set.load(); err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
		a.externals[ext.Issuer] = set
	}
	a.apiLimits = newLimiterMap(perSecond(cfg.RatePerSecond), cfg.Burst)
	a.tokenLimits = newLimiterMap(perSecond(cfg.TokenRatePerMinute/60), cfg.TokenBurst)
	a.audit.start(a, cfg.AuditQueue)
	return a, nil
}

// Issuer returns the "iss" of the service's tokens.
func (a *Service) Issuer() string { return a.cfg.Issuer }

// TokenTTL returns the lifetime of the service's tokens.
func (a *Service) TokenTTL() time.Duration { return a.cfg.TokenTTL }

// JWKS returns the JSON Web Key Set of the service's keys that still verify
// tokens, the current one first, for /.well-known/jwks.json.
func (a *Service) JWKS() []byte {
	if err := a.keys.refresh(false); err != nil {
		a.log.Warn("signing keys", "err", err)
	}
	return a.keys.jwks()
}

// RotateKey makes a new signing key current. Tokens signed with the old key
// keep verifying until they expire; keys rotated out longer ago than that
// are deleted.
func (a *Service) RotateKey() (kid string, err error) {
	kid, err = a.keys.rotate()
	if err != nil {
		return "", fmt.Errorf("rotate key: %w", err)
	}
	return kid, nil
}

// Close writes the audit events still queued and stops the audit writer.
// Audit events given after Close are written synchronously.
func (a *Service) Close() error {
	return a.audit.close()
}
