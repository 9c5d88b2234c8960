import { createPublicKey, type KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import { jwtVerify } from "jose";
import { type Authenticate, type Identity, tokenOf } from "./auth.js";

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
  const key = new TextEncoder().encode(secret);
  if (key.length < 32) throw new RangeError(`the JWT secret must be at least 32 bytes (RFC 7518 section 3.2), got ${key.length}`);
  return { algorithm: "HS256", key };
}

/**
 * The key for a PEM public key: RS256 for an RSA key, ES256 for an EC P-256 key.
 * @throws {TypeError} for a private key, another key type or curve, or text that is not a PEM key.
 */
export function publicKey(pem: string): JwtKey {
  if (pem.includes("PRIVATE KEY")) throw new TypeError("expected a public key, got a private key: give the server only the public half");
  const key = createPublicKey(pem);
  if (key.asymmetricKeyType === "rsa") return { algorithm: "RS256", key };
  if (key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1") return { algorithm: "ES256", key };
  throw new TypeError(`expected an RSA or EC P-256 public key, got ${key.asymmetricKeyType ?? "an unknown"} key`);
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

/**
 * An `authenticate` hook for JWT connection tokens (RFC 7519), verified with `jose`. Only
 * `key.algorithm` is accepted. Claims: `sub` (required) becomes the connection's id; `exp`, if
 * present, must be in the future and closes the connection when it passes; `channels`, if
 * present, is an array of strings listing the channels it may join (`*` ends a prefix).
 * Any failure throws, which refuses the upgrade with HTTP 401.
 */
export function jwtAuthenticator({ algorithm, key }: JwtKey): Authenticate {
  return async (request) => {
    const token = tokenOf(request);
    if (token === undefined) throw new Error("no token");
    const { payload } = await jwtVerify(token, key, { algorithms: [algorithm], requiredClaims: ["sub"] });
    const { sub, exp, channels } = payload;
    if (typeof sub !== "string" || sub === "") throw new Error('the "sub" claim must be a non-empty string');
    if (channels !== undefined && !(Array.isArray(channels) && channels.every((entry) => typeof entry === "string"))) {
      throw new Error('the "channels" claim must be an array of strings');
    }
    const identity: Identity = { id: sub };
    if (channels !== undefined) identity.channels = channels;
    if (exp !== undefined) identity.expiresAt = exp * 1000;
    return identity;
  };
}
