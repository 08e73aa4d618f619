// Package cli is the one dispatcher both binaries share: subcommands by
// name, --help with every variable, the environment layered over ./.env,
// and a failure printed as one line. Each command is one file under
// cmd/<binary>.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/cowjacket/formjira/internal/config"
)

// ErrUsage is a command line that does not fit; the usage text was printed,
// so Run prints nothing more.
var ErrUsage = errors.New("usage")

// Env is what a command gets: the environment (the process's over ./.env)
// and the outputs.
type Env struct {
	Getenv func(string) string
	Stdout io.Writer
	Stderr io.Writer
}

// Command is one subcommand; the one named "" is the service.
type Command struct {
	Name    string
	Args    string // e.g. "[--since DATE]", for the usage text
	Summary string
	Run     func(ctx context.Context, env Env, args []string) error
}

// Program is a binary: its commands and the variables it reads.
type Program struct {
	Name     string
	Doc      string // one sentence: what the binary does
	Vars     []config.Var
	Commands []Command
}

// Run dispatches args (without the program name) to a command. A failure is
// printed to stderr as one line, "name: message", and returned, so main only
// chooses the exit code.
func (p Program) Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	err := p.run(ctx, args, getenv, stdout, stderr)
	if err != nil && !errors.Is(err, ErrUsage) && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, p.Name+":", OneLine(err.Error()))
	}
	return err
}

func (p Program) run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	name := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if name == "help" || slices.ContainsFunc(args, isHelp) {
		p.Usage(stdout)
		return nil
	}
	i := slices.IndexFunc(p.Commands, func(c Command) bool { return c.Name == name })
	if i < 0 {
		// One line, not the whole usage: the error would scroll away.
		fmt.Fprintf(stderr, "%s: unknown command %q (see %s --help)\n", p.Name, name, p.Name)
		return ErrUsage
	}
	dotenv, err := config.LoadDotEnv(".env")
	if err != nil {
		return fmt.Errorf(".env: %w", err)
	}
	env := Env{Getenv: config.Env(getenv, nil, dotenv), Stdout: stdout, Stderr: stderr}
	return p.Commands[i].Run(ctx, env, args)
}

func isHelp(a string) bool { return a == "--help" || a == "-h" || a == "-help" }

// Usage prints the commands and every variable with its default.
func (p Program) Usage(w io.Writer) {
	fmt.Fprintf(w, "%s %s\n\nUsage:\n", p.Name, p.Doc)
	for _, c := range p.Commands {
		line := strings.TrimSpace(strings.Join([]string{p.Name, c.Name, c.Args}, " "))
		fmt.Fprintf(w, "  %-40s %s\n", line, c.Summary)
	}
	fmt.Fprintf(w, "  %-40s %s\n", p.Name+" --help", "this text")
	fmt.Fprintln(w, "\nEnvironment (also read from ./.env; the process environment wins):")
	config.Usage(w, p.Vars)
}

// NoArgs is the check of a command that takes none; name is the
// command's ("" for the service, whose errors the program's name already
// heads).
func NoArgs(name string, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if name == "" {
		return fmt.Errorf("unexpected arguments %q (see --help)", strings.Join(args, " "))
	}
	return fmt.Errorf("%s: unexpected arguments %q (see --help)", name, strings.Join(args, " "))
}

// OneLine folds white space, so an error is one line of output.
func OneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// Main runs p as the process: interrupted by SIGINT or SIGTERM, exit status
// 1 on failure.
func Main(p Program) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := p.Run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		os.Exit(1)
	}
}
