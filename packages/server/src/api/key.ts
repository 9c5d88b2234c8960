import { createHash, timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";

/** The shortest API key taken, in bytes. */
export const MIN_API_KEY_BYTES = 32;

/**
 * The server API's key, checked in constant time: both sides are hashed (SHA-256) first, so the
 * comparison takes the same time whatever the length or the first differing byte.
 */
export class ApiKey {
  readonly #digest: Buffer;

  /**
   * @param key the key's bytes (a string is taken as UTF-8).
   * @throws {RangeError} for a key under MIN_API_KEY_BYTES bytes.
   */
  constructor(key: string | Uint8Array) {
    const bytes = typeof key === "string" ? Buffer.from(key, "utf8") : Buffer.from(key);
    if (bytes.length < MIN_API_KEY_BYTES)
      throw new RangeError(`the API key must be at least ${MIN_API_KEY_BYTES} bytes, got ${bytes.length}`);
    this.#digest = digest(bytes);
  }

  /**
   * Whether a request's headers carry this key: `Authorization: apikey KEY` (the scheme in any
   * case) or `X-API-Key: KEY`.
   */
  allows(headers: { authorization?: string | undefined; "x-api-key"?: string | string[] | undefined }): boolean {
    const scheme = /^apikey +(.+)$/i.exec(headers.authorization ?? "");
    const given = scheme?.[1] ?? headers["x-api-key"];
    if (typeof given !== "string") return false;
    return timingSafeEqual(digest(Buffer.from(given, "utf8")), this.#digest);
  }
}

function digest(bytes: Buffer): Buffer {
  return createHash("sha256").update(bytes).digest();
}

/**
 * The key the CLI's flags give: the file's text without one trailing newline, or the environment
 * variable's value (never a flag value: it would show in `ps`).
 * @returns undefined when neither is given.
 * @throws {Error} naming the flag for a file that cannot be read, or for both given.
 */
export async function loadApiKey(file: string | undefined, env: string | undefined): Promise<string | undefined> {
  if (file !== undefined && env) throw new Error("give one API key, not --api-key-file and WS_CHANNELS_API_KEY");
  if (file === undefined) return env || undefined;
  try {
    return (await readFile(file, "utf8")).replace(/\r?\n$/, "");
  } catch (error) {
    throw new Error(`--api-key-file ${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
}
