/* A line chart as a standalone SVG string: no browser, no library. */

/** One line of the chart. */
export interface Series {
  name: string;
  points: [x: number, y: number][];
}

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];

/** A "nice" step (1, 2 or 5 times a power of ten) that splits 0..max into about `count` ticks. */
function step(max: number, count: number): number {
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? raw;
}

const escapeXml = (text: string): string => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const label = (value: number): string => value.toLocaleString("en-US");

/**
 * Draws `series` on linear axes from 0, with a tick on the x axis at every x that occurs in the
 * data, labelled axes, a title and a legend.
 */
export function lineChart(series: Series[], text: { title: string; x: string; y: string }): string {
  const width = 720;
  const height = 440;
  const left = 90;
  const right = 170; // the legend sits in the right margin
  const top = 40;
  const bottom = 60;
  const xs = [...new Set(series.flatMap((s) => s.points.map(([x]) => x)))].sort((a, b) => a - b);
  const maxX = Math.max(1, ...xs);
  const maxData = Math.max(1, ...series.flatMap((s) => s.points.map(([, y]) => y)));
  const yStep = step(maxData, 5);
  const maxY = yStep * Math.ceil(maxData / yStep);
  const px = (x: number): number => Math.round(left + (x / maxX) * (width - left - right));
  const py = (y: number): number => Math.round(height - bottom - (y / maxY) * (height - top - bottom));

  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${(left + width - right) / 2}" y="22" text-anchor="middle" font-size="15">${escapeXml(text.title)}</text>`,
  ];
  for (let y = 0; y <= maxY + yStep / 2; y += yStep) {
    out.push(`<line x1="${left}" x2="${width - right}" y1="${py(y)}" y2="${py(y)}" stroke="#ddd"/>`);
    out.push(`<text x="${left - 6}" y="${py(y) + 4}" text-anchor="end">${label(y)}</text>`);
  }
  for (const x of xs) {
    out.push(`<line x1="${px(x)}" x2="${px(x)}" y1="${height - bottom}" y2="${height - bottom + 5}" stroke="black"/>`);
    out.push(`<text x="${px(x)}" y="${height - bottom + 18}" text-anchor="middle">${label(x)}</text>`);
  }
  out.push(`<path d="M${left},${top} V${height - bottom} H${width - right}" fill="none" stroke="black"/>`);
  out.push(`<text x="${(left + width - right) / 2}" y="${height - 15}" text-anchor="middle">${escapeXml(text.x)}</text>`);
  out.push(`<text transform="translate(20 ${(top + height - bottom) / 2}) rotate(-90)" text-anchor="middle">${escapeXml(text.y)}</text>`);
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const points = [...s.points].sort((a, b) => a[0] - b[0]);
    out.push(
      `<polyline points="${points.map(([x, y]) => `${px(x)},${py(y)}`).join(" ")}" fill="none" stroke="${color}" stroke-width="2"/>`,
    );
    for (const [x, y] of points) out.push(`<circle cx="${px(x)}" cy="${py(y)}" r="3.5" fill="${color}"/>`);
    const ly = top + 10 + i * 20;
    out.push(`<line x1="${width - right + 15}" x2="${width - right + 40}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"/>`);
    out.push(`<text x="${width - right + 46}" y="${ly + 4}">${escapeXml(s.name)}</text>`);
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
