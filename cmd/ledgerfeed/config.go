package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ledgerfeed/ledgerfeed/auth"
)

// config holds the settings of every command. It is filled in order from
// defaultConfig, the LEDGERFEED_* environment (loadEnv) and the command's
// flags, so a flag wins over its variable.
type config struct {
	DataDir     string // --data, LEDGERFEED_DATA
	Store       string // --store, LEDGERFEED_STORE: bolt:DIR or postgres://… ("" = bolt:DataDir)
	HTTPAddr    string // --http-addr, LEDGERFEED_HTTP_ADDR
	GRPCAddr    string // --grpc-addr, LEDGERFEED_GRPC_ADDR
	AdminSecret string // --admin-secret, LEDGERFEED_ADMIN_SECRET
	Demo        bool   // --demo, LEDGERFEED_DEMO
	DemoSecret  string // --demo-secret, LEDGERFEED_DEMO_SECRET

	// Auth. Zero values take auth's defaults.
	Issuer    string        // --issuer, LEDGERFEED_ISSUER ("" = "ledgerfeed")
	Audience  string        // --audience, LEDGERFEED_AUDIENCE ("" = "ledgerfeed")
	TokenTTL  time.Duration // --token-ttl, LEDGERFEED_TOKEN_TTL (0 = 1h)
	JWKSFiles string        // --jwks-file (repeated), LEDGERFEED_JWKS_FILES: ISSUER=FILE, comma-separated
	// Rate limits; 0 = the default, negative = none.
	RateLimit      float64       // --rate-limit, LEDGERFEED_RATE_LIMIT: API calls per second per client (0 = 50)
	RateBurst      int           // --rate-burst, LEDGERFEED_RATE_BURST (0 = 100)
	TokenRateLimit float64       // --token-rate-limit, LEDGERFEED_TOKEN_RATE_LIMIT: token requests per minute per client id and per address (0 = 30)
	TokenRateBurst int           // --token-rate-burst, LEDGERFEED_TOKEN_RATE_BURST (0 = 10)
	MaxBodyBytes   int64         // --max-body-bytes, LEDGERFEED_MAX_BODY_BYTES (0 = 10 MiB)
	KeyPoll        time.Duration // --key-poll, LEDGERFEED_KEY_POLL: how often a node looks for a signing key rotated elsewhere (0 = 2s)
	Nodes          int           // --nodes, LEDGERFEED_NODES: nodes sharing the store; each enforces 1/Nodes of every rate limit (0 = 1)

	jwksFromFlag bool // a --jwks-file flag was seen: later ones append
}

func defaultConfig() config {
	return config{
		DataDir:  "./data",
		HTTPAddr: ":8080",
		GRPCAddr: ":9090",
	}
}

// loadEnv sets each field whose variable is set and not empty.
func (c *config) loadEnv(getenv func(string) string) error {
	for _, v := range []struct {
		name string
		dst  *string
	}{
		{"LEDGERFEED_DATA", &c.DataDir},
		{"LEDGERFEED_STORE", &c.Store},
		{"LEDGERFEED_HTTP_ADDR", &c.HTTPAddr},
		{"LEDGERFEED_GRPC_ADDR", &c.GRPCAddr},
		{"LEDGERFEED_ADMIN_SECRET", &c.AdminSecret},
		{"LEDGERFEED_DEMO_SECRET", &c.DemoSecret},
	} {
		if s := getenv(v.name); s != "" {
			*v.dst = s
		}
	}
	for _, v := range []struct {
		name  string
		parse func(string) error
	}{
		{"LEDGERFEED_ISSUER", setString(&c.Issuer)},
		{"LEDGERFEED_AUDIENCE", setString(&c.Audience)},
		{"LEDGERFEED_TOKEN_TTL", setDuration(&c.TokenTTL)},
		{"LEDGERFEED_JWKS_FILES", func(s string) error { c.JWKSFiles = s; _, err := c.externalIssuers(); return err }},
		{"LEDGERFEED_RATE_LIMIT", setFloat(&c.RateLimit)},
		{"LEDGERFEED_RATE_BURST", setInt(&c.RateBurst)},
		{"LEDGERFEED_TOKEN_RATE_LIMIT", setFloat(&c.TokenRateLimit)},
		{"LEDGERFEED_TOKEN_RATE_BURST", setInt(&c.TokenRateBurst)},
		{"LEDGERFEED_MAX_BODY_BYTES", setInt64(&c.MaxBodyBytes)},
		{"LEDGERFEED_KEY_POLL", setDuration(&c.KeyPoll)},
		{"LEDGERFEED_NODES", setInt(&c.Nodes)},
	} {
		if s := getenv(v.name); s != "" {
			if err := v.parse(s); err != nil {
				return fmt.Errorf("%s=%q: %v", v.name, s, err)
			}
		}
	}
	if s := getenv("LEDGERFEED_DEMO"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("LEDGERFEED_DEMO=%q: want true or false", s)
		}
		c.Demo = b
	}
	return nil
}

// dataFlag binds --data, which every command has.
func (c *config) dataFlag(fs *flag.FlagSet) {
	fs.StringVar(&c.DataDir, "data", c.DataDir, "data `DIR`: the store (ledgerfeed.db), its keys and the admin socket (env LEDGERFEED_DATA)")
}

// storeFlag binds --store, which serve and migrate have.
func (c *config) storeFlag(fs *flag.FlagSet) {
	fs.StringVar(&c.Store, "store", c.Store, "ledger `STORE`: bolt:DIR (the default, bolt:<--data>) or postgres://USER@HOST:PORT/DB?…;\nnodes on one PostgreSQL database share its signing keys and cursor key; each keeps credentials and report files in --data (env LEDGERFEED_STORE)")
}

// serveFlags binds the flags of serve.
func (c *config) serveFlags(fs *flag.FlagSet) {
	c.dataFlag(fs)
	c.storeFlag(fs)
	fs.StringVar(&c.HTTPAddr, "http-addr", c.HTTPAddr, "`HOST:PORT` of the REST API, /metrics, /healthz and /readyz (env LEDGERFEED_HTTP_ADDR)")
	fs.StringVar(&c.GRPCAddr, "grpc-addr", c.GRPCAddr, "`HOST:PORT` of the gRPC API, health and reflection (env LEDGERFEED_GRPC_ADDR)")
	// Secrets are Func flags so that -h never prints one from the environment.
	fs.Func("admin-secret", "`SECRET` of the admin client made on first start; prefer the env LEDGERFEED_ADMIN_SECRET, flags show in ps", setString(&c.AdminSecret))
	fs.BoolVar(&c.Demo, "demo", c.Demo, "seed an empty store with demo ledgers and a demo-partner client (env LEDGERFEED_DEMO)")
	fs.Func("demo-secret", "`SECRET` of the demo-partner client (env LEDGERFEED_DEMO_SECRET)", setString(&c.DemoSecret))
	fs.StringVar(&c.Issuer, "issuer", c.Issuer, "`ISS` of the tokens this server issues (env LEDGERFEED_ISSUER; default \"ledgerfeed\")")
	fs.StringVar(&c.Audience, "audience", c.Audience, "`AUD` of the tokens this server issues and requires (env LEDGERFEED_AUDIENCE; default \"ledgerfeed\")")
	fs.DurationVar(&c.TokenTTL, "token-ttl", c.TokenTTL, "lifetime of an access token (env LEDGERFEED_TOKEN_TTL; 0: 1h)")
	fs.Func("jwks-file", "`ISSUER=FILE`: also accept tokens of ISSUER verified with the JSON Web Key Set in FILE; repeatable\n(env LEDGERFEED_JWKS_FILES, comma-separated)", func(s string) error {
		if c.JWKSFiles != "" && !c.jwksFromFlag {
			c.JWKSFiles = "" // the first flag replaces the environment's list
		}
		c.jwksFromFlag = true
		old := c.JWKSFiles
		if old != "" {
			c.JWKSFiles += ","
		}
		c.JWKSFiles += s
		if _, err := c.externalIssuers(); err != nil {
			c.JWKSFiles = old
			return err
		}
		return nil
	})
	fs.Float64Var(&c.RateLimit, "rate-limit", c.RateLimit, "API calls per second per client, a token bucket (env LEDGERFEED_RATE_LIMIT; 0: 50; negative: no limit)")
	fs.IntVar(&c.RateBurst, "rate-burst", c.RateBurst, "burst of --rate-limit (env LEDGERFEED_RATE_BURST; 0: 100)")
	fs.Float64Var(&c.TokenRateLimit, "token-rate-limit", c.TokenRateLimit, "token requests per minute per client id and per remote address (env LEDGERFEED_TOKEN_RATE_LIMIT; 0: 30; negative: no limit)")
	fs.IntVar(&c.TokenRateBurst, "token-rate-burst", c.TokenRateBurst, "burst of --token-rate-limit (env LEDGERFEED_TOKEN_RATE_BURST; 0: 10)")
	fs.DurationVar(&c.KeyPoll, "key-poll", c.KeyPoll, "how often the server looks for a signing key rotated by another process or node (env LEDGERFEED_KEY_POLL; 0: 2s; at most 15s)")
	fs.IntVar(&c.Nodes, "nodes", c.Nodes, "how many nodes serve one --store behind a load balancer: the rate limits are for all of them, so each node enforces 1/N of every rate and burst (env LEDGERFEED_NODES; 0: 1)")
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", c.MaxBodyBytes, "largest REST request body accepted, 413 beyond (env LEDGERFEED_MAX_BODY_BYTES; 0: 10 MiB)")
}

// externalIssuers parses JWKSFiles.
func (c *config) externalIssuers() ([]auth.ExternalIssuer, error) {
	var out []auth.ExternalIssuer
	for _, item := range strings.Split(c.JWKSFiles, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		iss, file, ok := strings.Cut(item, "=")
		if !ok || iss == "" || file == "" {
			return nil, fmt.Errorf("%q: want ISSUER=FILE", item)
		}
		out = append(out, auth.ExternalIssuer{Issuer: iss, JWKSFile: file})
	}
	return out, nil
}

func setDuration(dst *time.Duration) func(string) error {
	return func(s string) error {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("want a duration such as 1h or 15m")
		}
		*dst = d
		return nil
	}
}

func setFloat(dst *float64) func(string) error {
	return func(s string) error {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("want a number")
		}
		*dst = f
		return nil
	}
}

func setInt(dst *int) func(string) error {
	return func(s string) error {
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("want an integer")
		}
		*dst = n
		return nil
	}
}

func setInt64(dst *int64) func(string) error {
	return func(s string) error {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("want an integer")
		}
		*dst = n
		return nil
	}
}

func setString(dst *string) func(string) error {
	return func(s string) error { *dst = s; return nil }
}

func (c *config) validateServe() error {
	switch {
	case c.DataDir == "":
		return fmt.Errorf("--data must not be empty")
	case c.HTTPAddr == "":
		return fmt.Errorf("--http-addr must not be empty")
	case c.GRPCAddr == "":
		return fmt.Errorf("--grpc-addr must not be empty")
	case c.TokenTTL < 0:
		return fmt.Errorf("--token-ttl must not be negative")
	case c.RateBurst < 0 || c.TokenRateBurst < 0:
		return fmt.Errorf("--rate-burst and --token-rate-burst must not be negative")
	case c.MaxBodyBytes < 0:
		return fmt.Errorf("--max-body-bytes must not be negative")
	case c.KeyPoll < 0 || c.KeyPoll > auth.Leeway/2:
		return fmt.Errorf("--key-poll must be 0 (2s) or up to %v", auth.Leeway/2)
	case c.Nodes < 0 || c.Nodes > 1000:
		return fmt.Errorf("--nodes must be 0 (one node) to 1000")
	}
	return nil
}
