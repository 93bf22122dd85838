package main

import (
	"flag"
	"fmt"
	"strconv"
)

// config holds the settings of every command. It is filled in order from
// defaultConfig, the LEDGERFEED_* environment (loadEnv) and the command's
// flags, so a flag wins over its variable.
type config struct {
	DataDir     string // --data, LEDGERFEED_DATA
	HTTPAddr    string // --http-addr, LEDGERFEED_HTTP_ADDR
	GRPCAddr    string // --grpc-addr, LEDGERFEED_GRPC_ADDR
	AdminSecret string // --admin-secret, LEDGERFEED_ADMIN_SECRET
	Demo        bool   // --demo, LEDGERFEED_DEMO
	DemoSecret  string // --demo-secret, LEDGERFEED_DEMO_SECRET
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
		{"LEDGERFEED_HTTP_ADDR", &c.HTTPAddr},
		{"LEDGERFEED_GRPC_ADDR", &c.GRPCAddr},
		{"LEDGERFEED_ADMIN_SECRET", &c.AdminSecret},
		{"LEDGERFEED_DEMO_SECRET", &c.DemoSecret},
	} {
		if s := getenv(v.name); s != "" {
			*v.dst = s
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

// serveFlags binds the flags of serve.
func (c *config) serveFlags(fs *flag.FlagSet) {
	c.dataFlag(fs)
	fs.StringVar(&c.HTTPAddr, "http-addr", c.HTTPAddr, "`HOST:PORT` of the REST API, /metrics, /healthz and /readyz (env LEDGERFEED_HTTP_ADDR)")
	fs.StringVar(&c.GRPCAddr, "grpc-addr", c.GRPCAddr, "`HOST:PORT` of the gRPC API, health and reflection (env LEDGERFEED_GRPC_ADDR)")
	// Secrets are Func flags so that -h never prints one from the environment.
	fs.Func("admin-secret", "`SECRET` of the admin client made on first start; prefer the env LEDGERFEED_ADMIN_SECRET, flags show in ps", setString(&c.AdminSecret))
	fs.BoolVar(&c.Demo, "demo", c.Demo, "seed an empty store with demo ledgers and a demo-partner client (env LEDGERFEED_DEMO)")
	fs.Func("demo-secret", "`SECRET` of the demo-partner client (env LEDGERFEED_DEMO_SECRET)", setString(&c.DemoSecret))
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
	}
	return nil
}
