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
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "licensor:", err)
		}
		os.Exit(exitCode(err))
	}
}

// usageError is a mistake on the command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

const usage = `licensor: license management for TV/OTT operators (AminoTV License Management API v4)

Usage:
  licensor serve   [flags]        run the HTTP server
  licensor migrate [flags]        apply pending database migrations and exit
  licensor keys create --name NAME --scope read|write [--allow CIDR]... [--expires DURATION]
  licensor keys list   [--json]
  licensor keys revoke NAME|PREFIX
  licensor webhooks create --url URL [--event TYPE]... [--secret whsec_...] [--description TEXT]
  licensor webhooks list   [--json]
  licensor webhooks delete ID
  licensor import legacy [flags] FILE|DIR|-...  import legacy licenses through the API (--url, --key)
  licensor version

Every command but import takes --db (or DATABASE_URL): a SQLite file path
(default licensor.db in the working directory) or a postgres:// URL. import
talks to a running server instead (--url, --key or LICENSOR_URL, LICENSOR_API_KEY).
Run "licensor COMMAND -h" for the flags of a command.
`

// run is the whole program; main only supplies the process's environment.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
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
		return runImport(ctx, rest, getenv, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "licensor", version())
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
}

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("licensor "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args, turning flag errors into usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	return nil
}
