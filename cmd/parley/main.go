// Command parley is Parley's one binary: `parley serve` runs the signaling server,
// `parley call` makes a call from the command line, `parley bench` measures.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const usage = `Usage: parley <command> [flags]

Commands:
  serve   run the signaling server
  call    join or host a call with media from files, recording what arrives
  token   print a signed join token for a session
  bench   benchmarks: signaling, idle, setup

Run 'parley <command> -h' for a command's flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(ctx, os.Args[2:])
	case "call":
		err = call(ctx, os.Args[2:])
	case "token":
		err = token(ctx, os.Args[2:])
	case "bench":
		err = bench(ctx, os.Args[2:])
	case "-h", "-help", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "parley: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if errors.Is(err, flag.ErrHelp) {
		return // the flag package has printed the usage
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "parley %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
