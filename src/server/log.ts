import { destination, type LevelWithSilent, type Logger, pino } from "pino";

/** `json`: one JSON object per line (for a log collector); `text`: one readable line per event. */
export type LogFormat = "text" | "json";

export const LOG_LEVELS: readonly LevelWithSilent[] = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

/**
 * A pino logger writing to stdout: JSON lines when stdout is not a terminal, readable lines
 * when it is, unless `format` says which.
 */
export function createLogger(level: LevelWithSilent, format?: LogFormat): Logger {
  const text = format === undefined ? process.stdout.isTTY === true : format === "text";
  return pino({ level }, text ? { write: (line: string) => process.stdout.write(readable(line)) } : destination(1));
}

const LEVELS: Record<number, string> = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };

/** `12:00:00.000 INFO msg key=value ...` for one JSON line from pino. */
function readable(line: string): string {
  const { time, level, msg, pid: _pid, hostname: _hostname, ...fields } = JSON.parse(line) as Record<string, unknown>;
  const clock = new Date(Number(time)).toISOString().slice(11, 23);
  const rest = Object.entries(fields).map(([key, value]) => ` ${key}=${typeof value === "string" ? value : JSON.stringify(value)}`);
  return `${clock} ${LEVELS[Number(level)] ?? String(level)} ${String(msg ?? "")}${rest.join("")}\n`;
}
