import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createTlsServer } from "node:https";
import { createSecureContext } from "node:tls";

/** A PEM certificate (chain) and its private key. */
export interface TlsFiles {
  cert: string | Buffer;
  key: string | Buffer;
}

/**
 * The HTTP server the WebSocket upgrades arrive on: Node's `https` with `tls`, `http` without.
 * @throws {Error} naming `tls.cert`, `tls.key`, or both, with the TLS library's reason, for a
 *   certificate or key that is not PEM, or that do not match.
 */
export function createListener(tls: TlsFiles | undefined, handler: (request: IncomingMessage, response: ServerResponse) => void): Server {
  if (tls === undefined) return createServer(handler);
  for (const part of ["cert", "key"] as const) {
    try {
      createSecureContext({ [part]: tls[part] });
    } catch (error) {
      throw new Error(`tls.${part}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  try {
    return createTlsServer(tls, handler);
  } catch (error) {
    throw new Error(`tls.cert and tls.key: ${error instanceof Error ? error.message : String(error)}`);
  }
}
