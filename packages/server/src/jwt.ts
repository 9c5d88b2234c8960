import { createPublicKey, type KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import { jwtVerify } from "jose";
import { type Authenticate, type Identity, isJsonObject, tokenOf } from "./auth.js";

/** The largest `info` claim, in bytes of its JSON: it travels in every presence entry. */
export const MAX_INFO_BYTES = 1024;

/** A verification key and the one algorithm accepted with it. */
export interface JwtKey {
  algorithm: "HS256" | "RS256" | "ES256";
  key: Uint8Array | KeyObject;
}

/**
 * The key for `secret` (HS256). RFC 7518 section 3.2 requires an HMAC key at least as long as
 * the hash: 32 bytes for HS256 (`openssl rand -hex 32` gives 64).
 * @throws {RangeError} for a secret shorter than 32 bytes.
 */
export function secretKey(secret: string): JwtKey {
  return strong({ algorithm: "HS256", key: new TextEncoder().encode(secret) });
}

/**
 * The key for a PEM public key: RS256 for an RSA key (of at least 2048 bits, RFC 7518 section
 * 3.3), ES256 for an EC P-256 key.
 * @throws {TypeError} for a private key, another key type or curve, or text that is not a PEM key.
 * @throws {RangeError} for an RSA key under 2048 bits.
 */
export function publicKey(pem: string): JwtKey {
  if (pem.includes("PRIVATE KEY")) throw new TypeError("expected a public key, got a private key: give the server only the public half");
  const key = createPublicKey(pem);
  if (key.asymmetricKeyType === "rsa") return strong({ algorithm: "RS256", key });
  if (key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1") return { algorithm: "ES256", key };
  throw new TypeError(`expected an RSA or EC P-256 public key, got ${key.asymmetricKeyType ?? "an unknown"} key`);
}

/**
 * `key`, once checked to be as long as RFC 7518 requires (an HS256 secret of 32 bytes, an RSA
 * key of 2048 bits): a shorter one would start a server that `jose` then refuses every token with,
 * or that anyone could brute-force.
 * @throws {RangeError} naming the key and its length.
 */
function strong(key: JwtKey): JwtKey {
  if (key.algorithm === "HS256") {
    const bytes = key.key instanceof Uint8Array ? key.key.length : (key.key.symmetricKeySize ?? 0);
    if (bytes < 32) throw new RangeError(`the JWT secret must be at least 32 bytes (RFC 7518 section 3.2), got ${bytes}`);
  }
  if (key.algorithm === "RS256") {
    const bits = key.key instanceof Uint8Array ? 0 : (key.key.asymmetricKeyDetails?.modulusLength ?? 0);
    if (bits < 2048) throw new RangeError(`the JWT RSA public key must be at least 2048 bits (RFC 7518 section 3.3), got ${bits}`);
  }
  return key;
}

/** Where the CLI may find the key; at most one may be set. */
export interface JwtKeySources {
  secretFile?: string | undefined;
  publicKeyFile?: string | undefined;
  /** `WS_CHANNELS_JWT_SECRET`'s value. */
  envSecret?: string | undefined;
}

/**
 * Reads the one configured key: a secret file (its text without one trailing newline), a PEM
 * public key file, or the secret from the environment.
 * @returns undefined when none is set; rejects, naming the source, when more than one is, or a
 *   file cannot be read or holds no usable key.
 */
export async function loadJwtKey({ secretFile, publicKeyFile, envSecret }: JwtKeySources): Promise<JwtKey | undefined> {
  const given = [secretFile && "--jwt-secret-file", publicKeyFile && "--jwt-public-key-file", envSecret && "WS_CHANNELS_JWT_SECRET"];
  const names = given.filter((name) => typeof name === "string");
  if (names.length > 1) throw new Error(`give one JWT key, not ${names.join(" and ")}`);
  const read = async (flag: string, path: string, parse: (text: string) => JwtKey): Promise<JwtKey> => {
    try {
      return parse(await readFile(path, "utf8"));
    } catch (error) {
      throw new Error(`${flag} ${path}: ${error instanceof Error ? error.message : String(error)}`);
    }
  };
  if (secretFile) return read("--jwt-secret-file", secretFile, (text) => secretKey(text.replace(/\r?\n$/, "")));
  if (publicKeyFile) return read("--jwt-public-key-file", publicKeyFile, publicKey);
  if (envSecret) return secretKey(envSecret);
  return undefined;
}

/** How `jwtAuthenticator` checks a token's claims beyond its signature. */
export interface JwtOptions {
  /** The `aud` a token must hold (RFC 7519 section 4.1.3). Default: `aud` is not checked. */
  audience?: string;
  /** The `iss` a token must hold (RFC 7519 section 4.1.1). Default: `iss` is not checked. */
  issuer?: string;
  /**
   * The oldest a token may be, in seconds from its `iat` (then required); with it a token needs
   * no `exp`, and the connection closes once the token is that old. Default: none, `exp` is required.
   */
  maxAge?: number;
  /** Clock skew allowed on `exp`, `nbf` and (with `maxAge`) `iat`, in seconds. Default: 5. */
  clockTolerance?: number;
  /** A token without a `channels` claim may join no channel, instead of every channel. Default: false. */
  requireChannels?: boolean;
}

/** The default `clockTolerance`, in seconds. */
export const JWT_CLOCK_TOLERANCE = 5;

/**
 * An `authenticate` hook for JWT connection tokens (RFC 7519), verified with `jose`. Only
 * `key.algorithm` is accepted. Claims: `sub` (required, a non-empty string) becomes the
 * connection's id; `exp` is required unless `maxAge` is given (RFC 8725 section 3.10: a token
 * should not be valid forever), must be in the future, and closes the connection when it passes
 * (both within `clockTolerance`); `nbf`, if present, must be past; `aud` and `iss` must match
 * `audience` and `issuer` when those are given; `channels`, if present, is an array of strings
 * listing the channels it may join (`*` ends a prefix), and without it the token may join every
 * channel (none with `requireChannels`); `info`, if present, a JSON object of at most 1 KiB (its
 * JSON), is what the connection's presence entries carry. Any failure throws, which refuses the upgrade with HTTP 401.
 * @throws {RangeError} for a key shorter than RFC 7518 requires (an HS256 secret under 32 bytes,
 *   an RSA key under 2048 bits), or a `maxAge` or `clockTolerance` that is not a number of seconds >= 0.
 */
export function jwtAuthenticator(jwtKey: JwtKey, options: JwtOptions = {}): Authenticate {
  const { algorithm, key } = strong(jwtKey);
  const { audience, issuer, maxAge, clockTolerance = JWT_CLOCK_TOLERANCE, requireChannels = false } = options;
  for (const [name, seconds] of [
    ["maxAge", maxAge],
    ["clockTolerance", clockTolerance],
  ] as const) {
    if (seconds !== undefined && !(Number.isFinite(seconds) && seconds >= 0))
      throw new RangeError(`${name} must be a number of seconds >= 0, got ${seconds}`);
  }
  const verify = {
    algorithms: [algorithm],
    requiredClaims: maxAge === undefined ? ["sub", "exp"] : ["sub"],
    clockTolerance,
    ...(audience !== undefined && { audience }),
    ...(issuer !== undefined && { issuer }),
    ...(maxAge !== undefined && { maxTokenAge: maxAge }),
  };
  return async (request) => {
    const token = tokenOf(request);
    if (token === undefined) throw new Error("no token");
    const { payload } = await jwtVerify(token, key, verify);
    const { sub, exp, iat, channels, info } = payload;
    if (typeof sub !== "string" || sub === "") throw new Error('the "sub" claim must be a non-empty string');
    if (channels !== undefined && !(Array.isArray(channels) && channels.every((entry) => typeof entry === "string"))) {
      throw new Error('the "channels" claim must be an array of strings');
    }
    if (info !== undefined && !(isJsonObject(info) && Buffer.byteLength(JSON.stringify(info)) <= MAX_INFO_BYTES)) {
      throw new Error(`the "info" claim must be a JSON object of at most ${MAX_INFO_BYTES} bytes`);
    }
    const identity: Identity = { id: sub, ...(info !== undefined && { info }) };
    if (channels !== undefined || requireChannels) identity.channels = channels ?? [];
    // it stops being valid at the earlier of exp and iat + maxAge (jose required iat with maxAge)
    const until = Math.min(exp ?? Infinity, maxAge === undefined || iat === undefined ? Infinity : iat + maxAge);
    if (until !== Infinity) identity.expiresAt = (until + clockTolerance) * 1000;
    return identity;
  };
}
