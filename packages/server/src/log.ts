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

/**
 * Thins out a flood of log lines of one kind: per `key`, the first line is written at once, and
 * those that follow within `periodMs` are not; when the period ends, the last of them is written
 * with `unlogged`, how many before it were not, and a new period starts. So at most one line per
 * key per period, and every line is either written or counted in one that is.
 * @returns a function taking the line's key and how to write it, given the count of lines not written.
 */
export function sampled(periodMs: number): (key: string, write: (unlogged: number) => void) => void {
  const periods = new Map<string, { skipped: number; last: (unlogged: number) => void }>();
  const open = (key: string): void => {
    const period = { skipped: 0, last: (_: number): void => undefined };
    periods.set(key, period);
    setTimeout(() => {
      periods.delete(key);
      if (period.skipped === 0) return;
      period.last(period.skipped - 1);
      open(key);
    }, periodMs).unref();
  };
  return (key, write) => {
    const period = periods.get(key);
    if (period === undefined) {
      write(0);
      open(key);
      return;
    }
    period.skipped++;
    period.last = write;
  };
}
