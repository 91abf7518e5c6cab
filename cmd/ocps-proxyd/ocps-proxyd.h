/*
 * ocps-proxyd: what main.c and the token subcommand (token.c) share.
 */
#pragma once

/* `ocps-proxyd token create|list|revoke ...` (argv[0] is "token"): makes,
 * lists and revokes bearer tokens in a data dir's store, beside a running
 * daemon or without one. Returns the process's exit code. */
int token_main(int argc, char **argv);
