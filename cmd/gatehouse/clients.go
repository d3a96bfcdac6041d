package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"text/tabwriter"
)

// clientsUsage is printed by `gatehouse clients` without a verb.
const clientsUsage = `usage:
  gatehouse clients create NAME        a client (a GL Connectors tenant) and its first key
  gatehouse clients list
  gatehouse clients new-key ID         another key for the client
  gatehouse clients revoke-key ID KEY_ID
  gatehouse clients delete ID          the client and its keys (its users stay)

A client's key (sk-client-...) is printed alone on stdout, once; it is kept
only as a hash. The verbs call the admin API at --admin-url with
GATEHOUSE_ADMIN_KEY, like admin-keys.
`

// clientJSON is a client as the admin API answers it.
type clientJSON struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	CreatedAt string `json:"createdAt"`
	Key       string `json:"key"`
	Keys      []struct {
		ID      string `json:"id"`
		Preview string `json:"preview"`
	} `json:"keys"`
}

// runClients runs `gatehouse clients VERB`.
func runClients(ctx context.Context, args []string, e cliEnv) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, clientsUsage)
		return exitUsage
	}
	verb, rest := args[0], args[1:]
	if verb == "help" || verb == "-h" || verb == "-help" || verb == "--help" {
		fmt.Fprint(e.stdout, clientsUsage)
		return exitOK
	}
	want := map[string]int{"create": 1, "list": 0, "ls": 0, "new-key": 1, "revoke-key": 2, "delete": 1, "rm": 1}
	n, known := want[verb]
	if !known {
		fmt.Fprintf(e.stderr, "gatehouse: unknown clients verb %q\n%s", verb, clientsUsage)
		return exitUsage
	}
	fs, adminURL := newCLIFlags("clients "+verb, e)
	pos, code := parseCLIArgs(fs, rest)
	if code >= 0 {
		return code
	}
	if len(pos) != n {
		return usageError(fs, fmt.Sprintf("%s takes %d argument(s); see gatehouse clients help", verb, n))
	}
	c, code := newAdminClient(*adminURL, keyCallTimeout, e)
	if code >= 0 {
		return code
	}
	switch verb {
	case "create":
		var cl clientJSON
		if err := c.call(ctx, http.MethodPost, "/clients", map[string]string{"name": pos[0]}, &cl); err != nil {
			return reportError(e.stderr, err)
		}
		fmt.Fprintln(e.stdout, cl.Key)
		fmt.Fprintf(e.stderr, "created client %s (id %s); its key is shown only this once\n", cl.Name, cl.ID)
	case "list", "ls":
		var resp struct {
			Clients []clientJSON `json:"clients"`
		}
		if err := c.call(ctx, http.MethodGet, "/clients?count=1000", nil, &resp); err != nil {
			return reportError(e.stderr, err)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tCREATED")
		for _, cl := range resp.Clients {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", cl.ID, cl.Name, cl.CreatedAt)
		}
		if err := tw.Flush(); err != nil {
			return reportError(e.stderr, err)
		}
	case "new-key":
		var k struct{ ID, Key string }
		if err := c.call(ctx, http.MethodPost, "/clients/"+url.PathEscape(pos[0])+"/keys", nil, &k); err != nil {
			return reportError(e.stderr, err)
		}
		fmt.Fprintln(e.stdout, k.Key)
		fmt.Fprintf(e.stderr, "created key %s of client %s; it is shown only this once\n", k.ID, pos[0])
	case "revoke-key":
		if err := c.call(ctx, http.MethodDelete, "/clients/"+url.PathEscape(pos[0])+"/keys/"+url.PathEscape(pos[1]), nil, nil); err != nil {
			return reportError(e.stderr, err)
		}
		fmt.Fprintf(e.stdout, "revoked key %s of client %s\n", pos[1], pos[0])
	case "delete", "rm":
		if err := c.call(ctx, http.MethodDelete, "/clients/"+url.PathEscape(pos[0]), nil, nil); err != nil {
			return reportError(e.stderr, err)
		}
		fmt.Fprintf(e.stdout, "deleted client %s\n", pos[0])
	}
	return exitOK
}
