// Command build builds Parley's browser client for `parley serve` to embed:
//
//	go run ./web/build [-out web/dist]
//
// It compiles web/client to WebAssembly, copies wasm_exec.js from the same Go toolchain and
// the files of web/static, writes a .br and a .gz copy of each, and prints their sizes.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"text/tabwriter"

	"github.com/parley-rtc/parley/web/webbuild"
)

func main() {
	out := flag.String("out", "web/dist", "`directory` to write the client into")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := webbuild.Build(ctx, webbuild.Config{Out: *out})
	if err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.Exit(1)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "file\tbytes\tgzip\tbrotli\t\n")
	for _, f := range append(res.Files, res.Total()) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t\n", f.Name, f.Raw, f.Gzip, f.Brotli)
	}
	tw.Flush()
}
