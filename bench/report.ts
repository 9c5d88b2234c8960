import { readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";

/** bench/RESULTS.md, next to this file's source (the script runs from build/bench/). */
export const RESULTS = new URL("../../bench/RESULTS.md", import.meta.url);

/** One line naming the date, Node version, CPU model and core count. */
export function machine(): string {
  const cpu = cpus();
  return `${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${cpu[0]?.model.trim() ?? "unknown CPU"}, ${cpu.length} cores`;
}

/** A markdown table: a header row, then the rows; every cell is printed as given, padded to its column's width. */
export function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows].map((row) => row.map(String));
  // columns padded to one width, as the repository's formatter (Biome) writes Markdown tables
  const widths = header.map((_, i) => Math.max(3, ...cells.map((row) => (row[i] ?? "").length)));
  const line = (row: string[]): string => `| ${row.map((cell, i) => cell.padEnd(widths[i] as number)).join(" | ")} |`;
  const [head, ...body] = cells as [string[], ...string[][]];
  return [line(head), line(widths.map((width) => "-".repeat(width))), ...body.map(line)].join("\n");
}

/** The median of a non-empty list. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** A number with `digits` significant digits, thousands separated: 1234567 -> "1,235,000". */
export function fmt(value: number, digits = 3): string {
  if (!Number.isFinite(value)) return String(value);
  return Number(value.toPrecision(digits)).toLocaleString("en-US", { maximumFractionDigits: 6 });
}

/**
 * Replaces the section `name` of bench/RESULTS.md (between `<!-- name -->` and `<!-- /name -->`)
 * with `markdown`, adding the section at the end if it is not there yet.
 */
export function writeSection(name: string, markdown: string): void {
  let text = "";
  try {
    text = readFileSync(RESULTS, "utf8");
  } catch {
    text = "# Benchmark results\n\nWritten by `npm run bench` and `npm run bench:e2e`; see README.md for how to read them.\n";
  }
  const open = `<!-- ${name} -->`;
  const close = `<!-- /${name} -->`;
  const block = `${open}\n${markdown.trim()}\n${close}`;
  const start = text.indexOf(open);
  const end = text.indexOf(close);
  text = start >= 0 && end > start ? text.slice(0, start) + block + text.slice(end + close.length) : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(RESULTS, text);
}
