// niks3-hook-help: the usage texts of niks3-hook v1.7.0 (cmd/niks3-hook/main.go printUsage,
// printSendHelp, printServeHelp), verbatim. All of them go to stderr.

import { AUTH_TOKEN_HELP, AUTH_TOKEN_PATH_HELP, AUTH_TOKEN_SCRIPT_HELP, TLS_HELP } from "./niks3-help.ts";

/** The socket both subcommands use unless --socket says otherwise (hook.DefaultSocketPath). */
export const DEFAULT_SOCKET = "/run/niks3/upload-to-cache.sock";

export const USAGE = `Usage: niks3-hook <command> [flags]

Commands:
  send    Send store paths to the upload daemon (called by Nix post-build-hook)
  serve   Run the upload daemon (accepts paths, queues, and uploads)

Use 'niks3-hook <command> --help' for more information about a command.
`;

export const SEND_HELP = `Usage: niks3-hook send [flags]

Send store paths from OUT_PATHS to the upload daemon via unix socket.
Always exits 0 to avoid affecting Nix builds. Errors are logged to stderr.

Flags:
  --socket string
        Unix socket path (default: ${DEFAULT_SOCKET})
  -h, --help
        Show this help message
`;

export const SERVE_HELP = `Usage: niks3-hook serve [flags]

Run the upload daemon. Listens on a unix stream socket, queues paths in SQLite,
and uploads them to the niks3 server in the background.

Flags:
  --server-url string
        Server URL (can also use NIKS3_SERVER_URL env var)
${AUTH_TOKEN_HELP}
${AUTH_TOKEN_PATH_HELP}
${AUTH_TOKEN_SCRIPT_HELP}
  --socket string
        Unix socket path (default: ${DEFAULT_SOCKET})
  --db-path string
        SQLite database path (default: /var/lib/niks3-hook/upload-queue.db)
  --batch-size int
        Paths per upload batch (default: 50)
  --idle-exit-timeout string
        Exit after no activity; "0" to disable (default: "60s")
  --max-concurrent-uploads int
        Concurrent upload limit (default: 30)
  --verify-s3-integrity
        Verify S3 objects before skipping
${TLS_HELP}
  --debug
        Enable debug logging
  -h, --help
        Show this help message
`;
