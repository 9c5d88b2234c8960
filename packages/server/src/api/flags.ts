import { type Command, InvalidArgumentError } from "commander";
import { DEFAULTS } from "../options.js";

/** The server API's flags, as commander parsed them. */
export interface ApiFlags {
  apiPort?: number;
  apiHost: string;
  apiKeyFile?: string;
}

function port(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 65535) throw new InvalidArgumentError("expected an integer from 0 to 65535");
  return Number(value);
}

/** Adds the server API's flags to `command`. The key is never a flag value (it would show in `ps`). */
export function apiFlags(command: Command): Command {
  return command
    .option("--api-port <port>", "server API listener, POST /api/METHOD (0: any free port) (default: off)", port)
    .option("--api-host <address>", "address the server API listener binds to", DEFAULTS.apiHost)
    .option("--api-key-file <path>", "the key every API request carries, at least 32 bytes (or WS_CHANNELS_API_KEY)");
}
