package main

import (
	"flag"
	"io"
	"strings"
	"testing"
)

func TestConfig_EnvThenFlags(t *testing.T) {
	env := map[string]string{
		"LEDGERFEED_DATA":         "/env/data",
		"LEDGERFEED_HTTP_ADDR":    "127.0.0.1:1111",
		"LEDGERFEED_GRPC_ADDR":    "127.0.0.1:2222",
		"LEDGERFEED_ADMIN_SECRET": "env-admin",
		"LEDGERFEED_DEMO":         "true",
		"LEDGERFEED_DEMO_SECRET":  "env-demo",
	}
	cfg := defaultConfig()
	if err := cfg.loadEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	want := config{DataDir: "/env/data", HTTPAddr: "127.0.0.1:1111", GRPCAddr: "127.0.0.1:2222",
		AdminSecret: "env-admin", Demo: true, DemoSecret: "env-demo"}
	if cfg != want {
		t.Fatalf("after env:\n got %+v\nwant %+v", cfg, want)
	}

	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg.serveFlags(fs)
	if err := fs.Parse([]string{"--data", "/flag/data", "--grpc-addr", ":3333", "--admin-secret", "flag-admin", "--demo=false"}); err != nil {
		t.Fatal(err)
	}
	want = config{DataDir: "/flag/data", HTTPAddr: "127.0.0.1:1111", GRPCAddr: ":3333",
		AdminSecret: "flag-admin", Demo: false, DemoSecret: "env-demo"}
	if cfg != want {
		t.Fatalf("after flags:\n got %+v\nwant %+v", cfg, want)
	}
}

func TestConfig_Defaults(t *testing.T) {
	cfg := defaultConfig()
	if err := cfg.loadEnv(func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	want := config{DataDir: "./data", HTTPAddr: ":8080", GRPCAddr: ":9090"}
	if cfg != want {
		t.Fatalf("got %+v, want %+v", cfg, want)
	}
}

func TestConfig_BadDemoEnv(t *testing.T) {
	cfg := defaultConfig()
	err := cfg.loadEnv(func(k string) string {
		if k == "LEDGERFEED_DEMO" {
			return "sometimes"
		}
		return ""
	})
	if err == nil || !strings.Contains(err.Error(), "LEDGERFEED_DEMO") {
		t.Fatalf("err = %v, want one naming LEDGERFEED_DEMO", err)
	}
}

// The help text must never show a secret taken from the environment.
func TestConfig_HelpHidesSecrets(t *testing.T) {
	cfg := config{AdminSecret: "s3cret-admin", DemoSecret: "s3cret-demo"}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var out strings.Builder
	fs.SetOutput(&out)
	cfg.serveFlags(fs)
	fs.PrintDefaults()
	if strings.Contains(out.String(), "s3cret") {
		t.Fatalf("help shows a secret:\n%s", out.String())
	}
	fs.SetOutput(io.Discard)
}
