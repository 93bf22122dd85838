package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// apiCmd is one run of a subcommand of a command group that talks to the
// API (ledgerfeed client …, ledgerfeed report …): its flags, the API
// connection settings and where it writes.
type apiCmd struct {
	fs     *flag.FlagSet
	ac     apiConfig
	json   bool
	api    *adminAPI
	stdout io.Writer
	stderr io.Writer
}

// apiSubcommand is one subcommand of a group; C is the group's command type.
type apiSubcommand[C any] struct {
	name, synopsis, summary string
	run                     func(c C, ctx context.Context, args []string) error
}

// apiGroup is a command group: "ledgerfeed <name> <subcommand> [flags]".
type apiGroup[C any] struct {
	name, about string
	commands    []apiSubcommand[C]
	wrap        func(*apiCmd) C // the group's command around the common part
}

// run runs "ledgerfeed <group> SUBCOMMAND …".
func (g apiGroup[C]) run(ctx context.Context, cfg config, args []string, stdout, stderr io.Writer) error {
	width := 0
	for _, c := range g.commands {
		width = max(width, len(c.name))
	}
	usage := func(w io.Writer) {
		fmt.Fprintf(w, "Usage: ledgerfeed %s <command> [flags]\n\n%s\n\nCommands:\n", g.name, g.about)
		for _, c := range g.commands {
			fmt.Fprintf(w, "  %-*s %s\n", width, c.name, c.summary)
		}
		fmt.Fprintf(w, "\nFlags of a command: ledgerfeed %s <command> -h\n", g.name)
	}
	if len(args) == 0 {
		usage(stderr)
		return usageError{fmt.Errorf("%s: no command", g.name)}
	}
	name, args := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return nil
	}
	for _, c := range g.commands {
		if c.name != name {
			continue
		}
		ac := &apiCmd{
			fs:     newFlagSet(g.name+" "+c.name, strings.TrimSpace(c.synopsis+" [flags]"), g.about, stderr),
			ac:     newAPIConfig(os.Getenv, cfg.DataDir),
			stdout: stdout,
			stderr: stderr,
		}
		ac.ac.bind(ac.fs)
		ac.fs.BoolVar(&ac.json, "json", false, "print JSON")
		return c.run(g.wrap(ac), ctx, args)
	}
	fmt.Fprintf(stderr, "ledgerfeed %s: unknown command %q\n\n", g.name, name)
	usage(stderr)
	return usageError{fmt.Errorf("%s: unknown command %q", g.name, name)}
}

// parse parses args, wants exactly the named positional arguments, and
// connects. Its errors are usage errors or flag.ErrHelp.
func (c *apiCmd) parse(args []string, names ...string) ([]string, error) {
	pos, err := parseArgs(c.fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) < len(names) {
		return nil, usagef(c.fs, "missing %s", names[len(pos)])
	}
	if len(pos) > len(names) {
		return nil, usagef(c.fs, "unexpected argument %q", pos[len(names)])
	}
	if c.api, err = c.ac.connect(c.stderr); err != nil {
		return nil, usagef(c.fs, "%v", err)
	}
	return pos, nil
}
