package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/ledgerfeed/ledgerfeed/report"
)

// reportSettings are serve's report file settings: defaults, then the
// LEDGERFEED_REPORT_* environment, then flags.
type reportSettings struct {
	Retention        time.Duration // --report-retention, LEDGERFEED_REPORT_RETENTION
	LinkTTL          time.Duration // --report-link-ttl, LEDGERFEED_REPORT_LINK_TTL
	DownloadsPerHour int           // --report-downloads-per-hour, LEDGERFEED_REPORT_DOWNLOADS_PER_HOUR
	Workers          int           // --report-workers, LEDGERFEED_REPORT_WORKERS
	BaseURL          string        // --public-url, LEDGERFEED_PUBLIC_URL
}

// bindReportFlags reads the environment and adds the flags to fs. Its error
// names a malformed variable.
func bindReportFlags(fs *flag.FlagSet, getenv func(string) string) (*reportSettings, error) {
	r := &reportSettings{}
	for _, v := range []struct {
		env string
		set func(string) error
	}{
		{"LEDGERFEED_REPORT_RETENTION", setDuration(&r.Retention)},
		{"LEDGERFEED_REPORT_LINK_TTL", setDuration(&r.LinkTTL)},
		{"LEDGERFEED_REPORT_DOWNLOADS_PER_HOUR", setInt(&r.DownloadsPerHour)},
		{"LEDGERFEED_REPORT_WORKERS", setInt(&r.Workers)},
		{"LEDGERFEED_PUBLIC_URL", setString(&r.BaseURL)},
	} {
		if s := getenv(v.env); s != "" {
			if err := v.set(s); err != nil {
				return nil, fmt.Errorf("%s=%q: %v", v.env, s, err)
			}
		}
	}
	fs.DurationVar(&r.Retention, "report-retention", r.Retention, "how long report files are kept after they were requested (env LEDGERFEED_REPORT_RETENTION; 0: 720h)")
	fs.DurationVar(&r.LinkTTL, "report-link-ttl", r.LinkTTL, "how long a report file download link works (env LEDGERFEED_REPORT_LINK_TTL; 0: 15m)")
	fs.IntVar(&r.DownloadsPerHour, "report-downloads-per-hour", r.DownloadsPerHour, "report file downloads per client and hour (env LEDGERFEED_REPORT_DOWNLOADS_PER_HOUR; 0: 25; negative: no limit)")
	fs.IntVar(&r.Workers, "report-workers", r.Workers, "report file jobs run at once (env LEDGERFEED_REPORT_WORKERS; 0: 2)")
	fs.StringVar(&r.BaseURL, "public-url", r.BaseURL, "`URL` (scheme://host[:port]) clients reach the REST API at, for download links (env LEDGERFEED_PUBLIC_URL; default: the request's host)")
	return r, nil
}

// check validates the settings after flag parsing.
func (r *reportSettings) check() error {
	switch {
	case r.Retention < 0:
		return fmt.Errorf("--report-retention must not be negative")
	case r.LinkTTL < 0:
		return fmt.Errorf("--report-link-ttl must not be negative")
	case r.Workers < 0 || r.Workers > 64:
		return fmt.Errorf("--report-workers must be 0–64")
	}
	if r.BaseURL != "" {
		u, err := url.Parse(r.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return fmt.Errorf("--public-url %q: want scheme://host[:port], e.g. https://ledgerfeed.example.com", r.BaseURL)
		}
		r.BaseURL = strings.TrimSuffix(r.BaseURL, "/")
	}
	return nil
}

// config is the report service's configuration: DATA/reports holds the
// node id and the files being written, and the finished files too unless
// st keeps them (a PostgreSQL store: as blobs every node serves). Each of
// nodes nodes allows 1/nodes of the download limit (rounded up), as with
// the API's rate limits, so a client gets about the limit in all.
func (r *reportSettings) config(st report.Store, dataDir string, nodes int, log *slog.Logger) report.Config {
	downloads := r.DownloadsPerHour
	if downloads == 0 {
		downloads = report.DefaultDownloadsPerHour
	}
	if downloads > 0 && nodes > 1 {
		downloads = (downloads + nodes - 1) / nodes
	}
	return report.Config{
		Store: st, Dir: filepath.Join(dataDir, "reports"), Logger: log.With("component", "report"),
		Retention: r.Retention, TokenTTL: r.LinkTTL, DownloadsPerHour: downloads, Workers: r.Workers,
		BaseURL: r.BaseURL,
	}
}
