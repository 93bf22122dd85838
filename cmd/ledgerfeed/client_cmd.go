package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// clientCommands are the subcommands of "ledgerfeed client".
var clientCommands = []apiSubcommand[*clientCmd]{
	{"create", "ID [--scope read|admin]... [--grant LEDGER[:gdpr]]...", "create a client and print its secret, once", (*clientCmd).create},
	{"list", "", "list the clients", (*clientCmd).list},
	{"show", "ID", "show one client", (*clientCmd).show},
	{"grant", "ID LEDGER [--gdpr]", "let a client read a ledger (with GDPR fields: --gdpr)", (*clientCmd).grant},
	{"revoke", "ID LEDGER", "take a ledger grant away from a client", (*clientCmd).revoke},
	{"rotate", "ID", "give a client a new secret and print it, once; the old one stops working", (*clientCmd).rotate},
	{"delete", "ID", "delete a client; its tokens stop working", (*clientCmd).delete},
}

const clientAbout = `Manages the API clients through the server's admin API, as the client given by
--client-id and its secret (--client-secret, --credentials, LEDGERFEED_CLIENT_SECRET,
or else DATA/admin-credentials, which serve writes on first start). Prefer
LEDGERFEED_CLIENT_SECRET to --client-secret: flags show in ps.`

// runClient runs "ledgerfeed client SUBCOMMAND".
func runClient(ctx context.Context, cfg config, args []string, stdout, stderr io.Writer) error {
	return apiGroup[*clientCmd]{name: "client", about: clientAbout, commands: clientCommands,
		wrap: func(c *apiCmd) *clientCmd { return &clientCmd{apiCmd: c} }}.run(ctx, cfg, args, stdout, stderr)
}

// clientCmd is one run of a client subcommand.
type clientCmd struct {
	*apiCmd
}

// listFlag collects a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func (cc *clientCmd) create(ctx context.Context, args []string) error {
	var scopes, grants listFlag
	cc.fs.Var(&scopes, "scope", "`SCOPE` to give: read (the report API) or admin (the admin API); repeat for both (default read)")
	cc.fs.Var(&grants, "grant", "ledger the client may read, `LEDGER[:gdpr]` (:gdpr: with GDPR consent); repeatable")
	pos, err := cc.parse(args, "ID")
	if err != nil {
		return err
	}
	c := apiClient{ClientID: pos[0], Scopes: []string(scopes)}
	if len(c.Scopes) == 0 {
		c.Scopes = []string{"read"}
	}
	for _, s := range c.Scopes {
		if s != "read" && s != "admin" {
			return usagef(cc.fs, "--scope %q: want read or admin", s)
		}
	}
	for _, g := range grants {
		id, opt, hasOpt := strings.Cut(g, ":")
		if id == "" || (hasOpt && opt != "gdpr") {
			return usagef(cc.fs, "--grant %q: want LEDGER or LEDGER:gdpr", g)
		}
		c.Grants = append(c.Grants, apiGrant{LedgerID: id, GDPRConsent: hasOpt})
	}
	out, err := cc.api.createClient(ctx, c)
	if err != nil {
		return fmt.Errorf("create client %s: %w", c.ClientID, err)
	}
	if out.ClientID == "" {
		out.ClientID = c.ClientID
	}
	if cc.json {
		if err := writeJSON(cc.stdout, out); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(cc.stdout, "client_id=%s\nclient_secret=%s\nscopes=%s\ngrants=%s\n",
			out.ClientID, out.ClientSecret, strings.Join(out.Scopes, ","), formatGrants(out.Grants, 0))
	}
	fmt.Fprintf(cc.stderr, "Client %s created. Store its secret now: it is shown only this once (the server keeps\n"+
		"only a hash). The client_id and client_secret lines above make a credentials file\n"+
		"(chmod 600 it). Lost it? ledgerfeed client rotate %s\n", out.ClientID, out.ClientID)
	return nil
}

func (cc *clientCmd) list(ctx context.Context, args []string) error {
	if _, err := cc.parse(args); err != nil {
		return err
	}
	cs, err := cc.api.listClients(ctx)
	if err != nil {
		return fmt.Errorf("list clients: %w", err)
	}
	if cc.json {
		return writeJSON(cc.stdout, nonNil(cs))
	}
	tw := tabwriter.NewWriter(cc.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT\tSCOPES\tGRANTS\tCREATED")
	for _, c := range cs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.ClientID, strings.Join(c.Scopes, ","), formatGrants(c.Grants, 5), dash(c.CreatedAt))
	}
	return tw.Flush()
}

func (cc *clientCmd) show(ctx context.Context, args []string) error {
	pos, err := cc.parse(args, "ID")
	if err != nil {
		return err
	}
	c, err := cc.api.getClient(ctx, pos[0])
	if err != nil {
		return fmt.Errorf("client %s: %w", pos[0], err)
	}
	return cc.printClient(c)
}

func (cc *clientCmd) grant(ctx context.Context, args []string) error {
	gdpr := cc.fs.Bool("gdpr", false, "with GDPR consent: the client may read the GDPR-sensitive fields of that ledger")
	pos, err := cc.parse(args, "ID", "LEDGER")
	if err != nil {
		return err
	}
	id, ledgerID := pos[0], pos[1]
	return cc.modify(ctx, id, func(c *apiClient) error {
		for i := range c.Grants {
			if c.Grants[i].LedgerID == ledgerID {
				c.Grants[i].GDPRConsent = *gdpr
				return nil
			}
		}
		c.Grants = append(c.Grants, apiGrant{LedgerID: ledgerID, GDPRConsent: *gdpr})
		return nil
	})
}

func (cc *clientCmd) revoke(ctx context.Context, args []string) error {
	pos, err := cc.parse(args, "ID", "LEDGER")
	if err != nil {
		return err
	}
	id, ledgerID := pos[0], pos[1]
	return cc.modify(ctx, id, func(c *apiClient) error {
		i := slices.IndexFunc(c.Grants, func(g apiGrant) bool { return g.LedgerID == ledgerID })
		if i < 0 {
			return fmt.Errorf("client %s has no grant for ledger %s (grants: %s); nothing changed", id, ledgerID, formatGrants(c.Grants, 10))
		}
		c.Grants = slices.Delete(c.Grants, i, i+1)
		return nil
	})
}

// modify reads a client, changes it with fn and writes it back (PUT
// replaces scopes and grants). A change made by someone else between the
// read and the write is lost.
func (cc *clientCmd) modify(ctx context.Context, id string, fn func(*apiClient) error) error {
	c, err := cc.api.getClient(ctx, id)
	if err != nil {
		return fmt.Errorf("client %s: %w", id, err)
	}
	if c.ClientID == "" {
		c.ClientID = id
	}
	if err := fn(&c); err != nil {
		return err
	}
	out, err := cc.api.updateClient(ctx, c)
	if err != nil {
		return fmt.Errorf("update client %s: %w", id, err)
	}
	if out.ClientID == "" {
		out.ClientID = id
	}
	return cc.printClient(out)
}

func (cc *clientCmd) rotate(ctx context.Context, args []string) error {
	pos, err := cc.parse(args, "ID")
	if err != nil {
		return err
	}
	id := pos[0]
	secret, err := cc.api.rotateSecret(ctx, id)
	if err != nil {
		return fmt.Errorf("rotate the secret of client %s: %w", id, err)
	}
	if cc.json {
		if err := writeJSON(cc.stdout, map[string]string{"clientId": id, "clientSecret": secret}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(cc.stdout, "client_id=%s\nclient_secret=%s\n", id, secret)
	}
	fmt.Fprintf(cc.stderr, "Client %s has a new secret; the old one no longer works. Store it now: it is\n"+
		"shown only this once.\n", id)
	if id == cc.api.id {
		fmt.Fprintln(cc.stderr, "That is the client this command signed in as: update its credentials file or LEDGERFEED_CLIENT_SECRET.")
	}
	return nil
}

func (cc *clientCmd) delete(ctx context.Context, args []string) error {
	force := cc.fs.Bool("force", false, "delete even the client this command signs in as")
	pos, err := cc.parse(args, "ID")
	if err != nil {
		return err
	}
	id := pos[0]
	if id == cc.api.id && !*force {
		return usagef(cc.fs, "%s is the client this command signs in as; deleting it locks you out (use --force)", id)
	}
	if err := cc.api.deleteClient(ctx, id); err != nil {
		return fmt.Errorf("delete client %s: %w", id, err)
	}
	if cc.json {
		return writeJSON(cc.stdout, map[string]any{"clientId": id, "deleted": true})
	}
	fmt.Fprintf(cc.stdout, "client %s deleted; its tokens no longer work\n", id)
	return nil
}

func (cc *clientCmd) printClient(c apiClient) error {
	if cc.json {
		return writeJSON(cc.stdout, c)
	}
	tw := tabwriter.NewWriter(cc.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "client_id\t%s\n", c.ClientID)
	fmt.Fprintf(tw, "scopes\t%s\n", strings.Join(c.Scopes, ","))
	fmt.Fprintf(tw, "grants\t%s\n", formatGrants(c.Grants, 0))
	if c.CreatedAt != "" {
		fmt.Fprintf(tw, "created\t%s\n", c.CreatedAt)
	}
	if c.SecretRotatedAt != "" {
		fmt.Fprintf(tw, "secret_rotated\t%s\n", c.SecretRotatedAt)
	}
	return tw.Flush()
}

// formatGrants writes grants as --grant takes them, "302321:gdpr,302322";
// with limit > 0, at most that many and "+N more". None is "-".
func formatGrants(gs []apiGrant, limit int) string {
	if len(gs) == 0 {
		return "-"
	}
	var parts []string
	for i, g := range gs {
		if limit > 0 && i == limit {
			parts = append(parts, fmt.Sprintf("+%d more", len(gs)-limit))
			break
		}
		s := g.LedgerID
		if g.GDPRConsent {
			s += ":gdpr"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ",")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
