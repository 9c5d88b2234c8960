import { InvalidArgumentError } from "commander";
import { parseOrigins } from "./ws/upgrade.js";

/* The CLI's parsers of flag values: each returns the value, or throws a message commander prints with the flag. */

/**
 * A parser of an integer flag from `min` to `max`, both included.
 * @returns the parser: it returns the number, or throws commander's InvalidArgumentError saying the range.
 */
export function integer(min: number, max: number): (value: string) => number {
  return (value: string): number => {
    const number = Number(value);
    if (!/^\d+$/.test(value) || number < min || number > max) {
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    }
    return number;
  };
}

/** Parses `--redis`: `redis://`, `rediss://` or a unix socket path. @throws {InvalidArgumentError} for anything else. */
export function redisUrl(value: string): string {
  if (!/^(rediss?:\/\/|\/)\S+$/.test(value))
    throw new InvalidArgumentError("expected redis://host:port, rediss://host:port or a unix socket path");
  return value;
}

/** Parses `--redis-prefix`: one or more characters, no white space. @throws {InvalidArgumentError} for anything else. */
export function redisPrefix(value: string): string {
  if (!/^\S+$/.test(value)) throw new InvalidArgumentError("expected a prefix of one or more characters, no spaces");
  return value;
}

/** Parses `--allowed-origins`: comma-separated origins, or `*`. @throws {InvalidArgumentError} naming the bad entry. */
export function originList(value: string): readonly string[] | "*" {
  try {
    return parseOrigins(value);
  } catch (error) {
    throw new InvalidArgumentError(error instanceof Error ? error.message : String(error));
  }
}

/** A port flag: 0 (any free port) to 65535. */
export const port = integer(0, 65535);
/** A count or size flag: 1 to 2^31 - 1. */
export const count = integer(1, 2 ** 31 - 1);
