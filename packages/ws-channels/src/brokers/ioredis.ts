import type * as IoRedis from "ioredis";

/*
 * ioredis is an optional peer dependency: only users of `ws-channels/redis` install it. It is
 * loaded here, once, so that a missing package is a clear error naming it rather than Node's
 * ERR_MODULE_NOT_FOUND from deep inside the broker.
 */
let loaded: typeof IoRedis;
try {
  loaded = await import("ioredis");
} catch (error) {
  const code = (error as { code?: string }).code;
  if (code !== "ERR_MODULE_NOT_FOUND" && code !== "MODULE_NOT_FOUND") throw error;
  throw new Error('ws-channels/redis needs the "ioredis" package (an optional peer dependency): npm install ioredis', { cause: error });
}

/*
 * ioredis 6 declares `class VerbatimString extends String`. Making String.prototype the prototype
 * of a class leaves it in V8's dictionary mode (Node 20, V8 11), and optimized code then looks up
 * every string method it calls (charCodeAt, slice, startsWith...) generically, in this process's
 * code and its user's alike: the broker's compare of a channel's name took over twice as long. V8
 * turns a prototype fast again once an inline cache reads a property through it from an object
 * (reads on a primitive string do not count). Inline caches live in a function's feedback, which
 * V8 allocates only after some calls (the 10th by default, and a flag moves it), hence a loop far
 * longer than that: a thousand calls cost a few microseconds, once.
 */
const heir: { charCodeAt?: unknown } = Object.create(String.prototype);
const read = (object: { charCodeAt?: unknown }): unknown => object.charCodeAt;
for (let i = 0; i < 1000; i++) read(heir);

/** ioredis's client class. */
export const Redis = loaded.Redis;
/** An ioredis client. */
export type Redis = IoRedis.Redis;
