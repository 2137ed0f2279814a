// niks3-help: the usage texts of niks3 v1.7.0 (cmd/niks3/main.go, cmdutil/cmdutil.go), verbatim.
// All of them go to stderr.

export const AUTH_TOKEN_HELP = `  --auth-token string
        DEPRECATED: tokens passed on the command line are visible in /proc and
        shell history. Use --auth-token-path, --auth-token-script, or
        NIKS3_AUTH_TOKEN_FILE instead.
        When unset, falls back to NIKS3_AUTH_TOKEN_FILE or $XDG_CONFIG_HOME/niks3/auth-token`;

export const AUTH_TOKEN_PATH_HELP = `  --auth-token-path string
        Path to file containing the auth token (preferred over --auth-token).
        Re-read periodically so an external refresher can rotate it`;

export const AUTH_TOKEN_SCRIPT_HELP = `  --auth-token-script string
        Command that prints {"token":"...","expires_at":"RFC3339"} on stdout.
        Run on first use and again before expiry. Use for short-lived OIDC tokens`;

export const TLS_HELP = `  --client-cert string
        Client certificate file for mTLS authentication
  --client-key string
        Client private key file for mTLS authentication
  --ca-cert string
        CA certificate file for server verification (optional)`;

export const SERVER_URL_HELP = `  --server-url string
        Server URL (can also use NIKS3_SERVER_URL env var)`;

const DEBUG_HELP_TAIL = `  --debug
        Enable debug logging (includes HTTP requests/responses)
  -h, --help
        Show this help message`;

export const USAGE = `Usage: niks3 <command> [flags]

Commands:
  push    Upload paths to S3-compatible binary cache
  gc      Run garbage collection on old closures
  pins    Manage pins (list, delete)

Global flags:
  -h, --help    Show help

Use 'niks3 <command> --help' for more information about a command.
`;

export const PUSH_HELP = `Usage: niks3 push [flags] <store-paths...>

Upload Nix store paths to S3-compatible binary cache.

Flags:
${SERVER_URL_HELP}
${AUTH_TOKEN_HELP}
${AUTH_TOKEN_PATH_HELP}
${AUTH_TOKEN_SCRIPT_HELP}
  --max-concurrent-uploads int
        Maximum concurrent uploads (default: 30)
  --verify-s3-integrity
        Verify that objects in database actually exist in S3 before skipping upload
${TLS_HELP}
${DEBUG_HELP_TAIL}
`;

export const GC_HELP = `Usage: niks3 gc [flags]

Run garbage collection on old closures and failed uploads.

Flags:
${SERVER_URL_HELP}
${AUTH_TOKEN_HELP}
${AUTH_TOKEN_PATH_HELP}
${AUTH_TOKEN_SCRIPT_HELP}
  --older-than string
        Delete closures older than this duration (default: '720h' for 30 days)
  --failed-uploads-older-than string
        Delete failed uploads older than this duration (default: '6h')
  --force
        Force immediate deletion without grace period
        WARNING: may delete objects still being uploaded
${TLS_HELP}
${DEBUG_HELP_TAIL}
`;

export const PINS_HELP = `Usage: niks3 pins <subcommand> [flags]

Manage pins that protect closures from garbage collection.

Subcommands:
  create <name> <store-path>  Create a pin for an existing store path
  list                        List all pins
  delete <name>               Delete a pin by name

Flags:
${SERVER_URL_HELP}
  --auth-token string
        Auth token (default: $XDG_CONFIG_HOME/niks3/auth-token or NIKS3_AUTH_TOKEN_FILE)
  --names-only
        Output only pin names, one per line (for scripting, list only)
  --json
        Output as JSON (list only)
  --debug
        Enable debug logging
  -h, --help
        Show this help message
`;
