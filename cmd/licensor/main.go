// Command licensor is the license management service: the server (serve),
// its schema (migrate), its API keys (keys) and its webhooks (webhooks).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "licensor:", err)
		os.Exit(exitCode(err))
	}
}

// usageError is a mistake on the command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

const usage = `licensor: license management for TV/OTT operators (AminoTV License Management API v4)

Usage:
  licensor serve   [flags]        run the HTTP server (migrates the schema first unless --migrate=false)
  licensor migrate [flags]        apply pending database migrations and exit
  licensor migrate status         show the schema version and the pending migrations
  licensor keys create --name NAME --scope read|write [--allow CIDR]... [--expires DURATION]
  licensor keys list   [--json]
  licensor keys rotate NAME [--grace DURATION]   a new secret; the old one works for the grace period (24h)
  licensor keys revoke NAME|PREFIX
  licensor webhooks create --url URL [--event TYPE]... [--secret whsec_...] [--description TEXT]
  licensor webhooks list   [--json]
  licensor webhooks delete ID
  licensor import legacy [flags] FILE|DIR|-...  import legacy licenses through the API (--url, --key)
  licensor backup  --to FILE      copy a SQLite database while it serves (VACUUM INTO); never overwrites
  licensor doctor  [serve's flags] check the database, schema, clock, TLS files, JWT keys, disk
  licensor completion bash|zsh    print a shell completion script
  licensor config-reference       print the reference of serve's flags and environment variables
  licensor version

Every command but import takes --db (or DATABASE_URL): a SQLite file path
(default licensor.db in the working directory) or a postgres:// URL. Only
migrate and serve create a database or change its schema; the other commands
refuse a missing database or an old schema. import talks to a running server
instead (--url, --key or LICENSOR_URL, LICENSOR_API_KEY).
Run "licensor COMMAND -h" for the flags of a command.
`

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

// run is the whole program; main only supplies the process's environment.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	err := dispatch(ctx, args, getenv, stdout, stderr)
	var h helpRequest
	if errors.As(err, &h) {
		h.print(stdout)
		return nil
	}
	return err
}

func dispatch(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{"no command given"}
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return runServe(ctx, rest, getenv, stdout, stderr)
	case "migrate":
		return runMigrate(ctx, rest, getenv, stdout, stderr)
	case "keys":
		return runKeys(ctx, rest, getenv, stdout, stderr)
	case "webhooks":
		return runWebhooks(ctx, rest, getenv, stdout, stderr)
	case "import":
		if len(rest) > 0 && isHelp(rest[0]) {
			return helpRequest{text: importUsage + "\n"}
		}
		return runImport(ctx, rest, getenv, stdout, stderr)
	case "completion":
		return runCompletion(rest, stdout)
	case "backup":
		return runBackup(ctx, rest, getenv, stdout, stderr)
	case "doctor":
		return runDoctor(ctx, rest, getenv, stdout, stderr)
	case "config-reference":
		if len(rest) > 0 {
			if isHelp(rest[0]) {
				return helpRequest{text: "Usage: licensor config-reference\n\nPrints the Markdown reference of serve's flags and environment variables (docs/configuration.md).\n"}
			}
			return usageError{"config-reference takes no arguments"}
		}
		configReference(stdout)
		return nil
	case "version":
		printVersion(stdout)
		return nil
	default:
		if isHelp(cmd) {
			return helpRequest{text: usage}
		}
		return usageError{fmt.Sprintf("unknown command %q; run \"licensor -h\" for the commands", cmd)}
	}
}

// subcommand runs the subcommand of a command group (keys, webhooks) named
// by args[0]; with no argument or a help flag it answers the group's usage.
func subcommand(group string, args []string, synopsis string, table map[string]func([]string) error) error {
	if len(args) == 0 {
		return usageError{fmt.Sprintf("usage: %s; run \"licensor %s -h\" for more", synopsis, group)}
	}
	if isHelp(args[0]) {
		return helpRequest{text: "Usage: " + synopsis + "\n\nRun \"licensor " + group + " COMMAND -h\" for the flags of a command.\n"}
	}
	if f, ok := table[args[0]]; ok {
		return f(args[1:])
	}
	return usageError{fmt.Sprintf("unknown %s command %q; usage: %s", group, args[0], synopsis)}
}

// helpRequest is a -h (or --help) on the command line: run prints the
// text, or the flag set's usage, to standard output and exits 0.
type helpRequest struct {
	text string
	fs   *flag.FlagSet
}

func (h helpRequest) Error() string { return "help requested" }
func (h helpRequest) Unwrap() error { return flag.ErrHelp }

func (h helpRequest) print(w io.Writer) {
	if h.fs == nil {
		fmt.Fprint(w, h.text)
		return
	}
	fmt.Fprintf(w, "Usage: %s [flags]\n\nFlags:\n", h.fs.Name())
	h.fs.SetOutput(w)
	h.fs.PrintDefaults()
	h.fs.SetOutput(io.Discard)
}

// newFlagSet returns a flag set that reports errors instead of exiting and
// prints nothing itself: parseFlags turns -h into a helpRequest and a bad
// flag into a one-line usageError.
func newFlagSet(name string, _ io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("licensor "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseFlags parses args, turning -h into a helpRequest and flag errors
// into usage errors that point to -h.
// Flags may follow the arguments ("keys revoke bss --db x.db").
func parseFlags(fs *flag.FlagSet, args []string) error {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return helpRequest{fs: fs}
			}
			return usageError{fmt.Sprintf("%s (run \"%s -h\" for the flags)", err, fs.Name())}
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
	// Parse stops at "--" and keeps what follows as the arguments.
	return fs.Parse(append([]string{"--"}, positional...))
}

// parseWithEnv parses args, then sets each flag the command line did not
// from its environment variable (env maps flag names to variable names;
// a repeatable flag's variable is a comma-separated list). The defaults
// -h prints are never the environment's values.
func parseWithEnv(fs *flag.FlagSet, args []string, getenv func(string) string, env func(flagName string) string) error {
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		name := env(f.Name)
		if err != nil || given[f.Name] || name == "" {
			return
		}
		v := getenv(name)
		if v == "" {
			return
		}
		values := []string{v}
		if _, ok := f.Value.(repeatable); ok {
			values = strings.Split(v, ",")
		}
		for _, v := range values {
			if serr := fs.Set(f.Name, strings.TrimSpace(v)); serr != nil {
				err = usageError{fmt.Sprintf("%s: %s", name, redact(serr.Error()))}
				return
			}
		}
	})
	return err
}

// repeatable is a flag that may be given more than once.
type repeatable interface{ repeatable() }

func (*prefixList) repeatable()    {}
func (*originList) repeatable()    {}
func (*eventTypeList) repeatable() {}

// dbEnv is the environment of the admin commands: --db from DATABASE_URL.
func dbEnv(name string) string {
	if name == "db" {
		return "DATABASE_URL"
	}
	return ""
}
