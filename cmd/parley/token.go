package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/peterbourgon/ff/v3"

	"github.com/parley-rtc/parley/jointoken"
)

// token prints a join token for a session, signed with the server's token secret.
func token(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	session := fs.String("session", "", "the session `ID` the token admits to")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	secret := fs.String("token-secret", "", "the server's --token-secret (or PARLEY_TOKEN_SECRET)")
	fs.String("config", "", "read settings from this `file` (as parley serve)")
	if err := ff.Parse(fs, args, ff.WithEnvVarPrefix("PARLEY"), ff.WithConfigFileFlag("config"),
		ff.WithConfigFileParser(ff.PlainParser), ff.WithIgnoreUndefined(true)); err != nil {
		return err
	}
	if *session == "" || *secret == "" {
		return errors.New("give --session ID and --token-secret (or PARLEY_TOKEN_SECRET)")
	}
	tok, err := jointoken.Issue([]byte(*secret), *session, time.Now(), *ttl)
	if err != nil {
		return err
	}
	fmt.Println(tok)
	return nil
}
