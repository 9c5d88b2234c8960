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

/** ioredis's client class. */
export const Redis = loaded.Redis;
/** An ioredis client. */
export type Redis = IoRedis.Redis;
