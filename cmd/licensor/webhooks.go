package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/webhook"
)

func runWebhooks(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return subcommand("webhooks", args, "licensor webhooks create|list|delete [flags]", map[string]func([]string) error{
		"create": func(args []string) error { return webhooksCreate(ctx, args, getenv, stdout, stderr) },
		"list":   func(args []string) error { return webhooksList(ctx, args, getenv, stdout, stderr) },
		"delete": func(args []string) error { return webhooksDelete(ctx, args, getenv, stdout, stderr) },
	})
}

// eventTypeList is a repeatable --event flag that also takes comma lists.
type eventTypeList []licensor.EventType

func (l *eventTypeList) String() string { return fmt.Sprint(*l) }

func (l *eventTypeList) Set(s string) error {
	for _, part := range strings.Split(s, ",") {
		t := licensor.EventType(strings.TrimSpace(part))
		if !t.Valid() {
			return fmt.Errorf("unknown event type %q; one of %s", part, joinTypes(licensor.EventTypes()))
		}
		*l = append(*l, t)
	}
	return nil
}

func joinTypes(ts []licensor.EventType) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = string(t)
	}
	return strings.Join(parts, ",")
}

func webhooksCreate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("webhooks create", stderr)
	db := dbFlag(fs, getenv)
	url := fs.String("url", "", "where to POST the events: an https URL (required)")
	var types eventTypeList
	fs.Var(&types, "event", "an event type to deliver (repeatable or comma-separated; none means every type): "+joinTypes(licensor.EventTypes()))
	secret := fs.String("secret", "", "the signing secret, whsec_<base64> (default: a new random one, printed once)")
	description := fs.String("description", "", "what the subscriber is, for the operators")
	allowHTTP := fs.Bool("allow-http", false, "accept an http:// URL (the server must also run with --webhook-allow-http)")
	allowPrivate := fs.Bool("allow-private", false, "accept an internal address (the server must also allow it)")
	if err := parseWithEnv(fs, args, getenv, dbEnv); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected arguments %q", fs.Args())}
	}
	if *url == "" {
		return usageError{"--url is required"}
	}
	w := licensor.Webhook{URL: *url, EventTypes: types, Description: *description, Secret: *secret}
	if w.Secret == "" {
		w.Secret = licensor.NewWebhookSecret()
	}
	if w.EventTypes == nil {
		w.EventTypes = []licensor.EventType{}
	}
	if err := w.Validate(); err != nil {
		return usageError{describeInvalid(err)}
	}
	policy := webhook.Policy{AllowHTTP: *allowHTTP, AllowPrivate: *allowPrivate}
	if err := policy.CheckURL(w.URL); err != nil {
		return usageError{describeInvalid(err)}
	}
	d, err := openExisting(ctx, *db, quietLogger(stderr))
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.CreateWebhook(ctx, &w, licensor.Change{Time: time.Now().Unix(), Actor: "cli"}); err != nil {
		return fmt.Errorf("create webhook: %w", err)
	}
	fmt.Fprintln(stdout, w.Secret)
	fmt.Fprintf(stderr, "Created webhook %d for %s (%s).\nIts signing secret (above) is shown only this once: give it to the receiver now.\n",
		w.ID, w.URL, describeTypes(w.EventTypes))
	return nil
}

// describeInvalid turns validation errors into one line.
func describeInvalid(err error) string {
	var parts []string
	switch e := err.(type) {
	case licensor.Errors:
		for _, x := range e {
			parts = append(parts, x.Detail)
		}
	case *licensor.Error:
		parts = append(parts, e.Detail)
	default:
		parts = append(parts, err.Error())
	}
	return strings.Join(parts, "; ")
}

func describeTypes(ts []licensor.EventType) string {
	if len(ts) == 0 {
		return "every event type"
	}
	return joinTypes(ts)
}

// webhookView is how webhooks list shows a webhook; never the secret.
type webhookView struct {
	ID          int64                `json:"id"`
	URL         string               `json:"url"`
	EventTypes  []licensor.EventType `json:"event_types"`
	Description string               `json:"description"`
	CreatedAt   int64                `json:"created_at"`
	PausedAt    *int64               `json:"paused_at"` // null while active
}

func webhooksList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("webhooks list", stderr)
	db := dbFlag(fs, getenv)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := parseWithEnv(fs, args, getenv, dbEnv); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected arguments %q", fs.Args())}
	}
	d, err := openExisting(ctx, *db, quietLogger(stderr))
	if err != nil {
		return err
	}
	defer d.Close()
	hooks, err := d.FindWebhooks(ctx)
	if err != nil {
		return fmt.Errorf("list webhooks: %w", err)
	}
	views := make([]webhookView, len(hooks))
	for i, h := range hooks {
		views[i] = webhookView{ID: h.ID, URL: h.URL, EventTypes: h.EventTypes, Description: h.Description, CreatedAt: h.CreatedAt, PausedAt: h.PausedAt}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(views)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tURL\tEVENTS\tDESCRIPTION\tSTATE\tCREATED")
	for _, v := range views {
		state := "active"
		if v.PausedAt != nil {
			state = "paused since " + time.Unix(*v.PausedAt, 0).UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", v.ID, v.URL, describeTypes(v.EventTypes), v.Description, state,
			time.Unix(v.CreatedAt, 0).UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

func webhooksDelete(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("webhooks delete", stderr)
	db := dbFlag(fs, getenv)
	if err := parseWithEnv(fs, args, getenv, dbEnv); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"usage: licensor webhooks delete ID"}
	}
	id, err := strconv.ParseInt(fs.Arg(0), 10, 64)
	if err != nil || id <= 0 {
		return usageError{fmt.Sprintf("%q is not a webhook id", fs.Arg(0))}
	}
	d, err := openExisting(ctx, *db, quietLogger(stderr))
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.DeleteWebhook(ctx, id, licensor.Change{Time: time.Now().Unix(), Actor: "cli"}); err != nil {
		if licensor.ErrorCode(err) == licensor.CodeWebhookNotFound {
			return fmt.Errorf("no webhook %d", id)
		}
		return fmt.Errorf("delete webhook: %w", err)
	}
	fmt.Fprintf(stderr, "Deleted webhook %d and its delivery log.\n", id)
	return nil
}
