import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/*
 * The docs' code, checked: every ```ts block of README.md and docs/*.md is type-checked against
 * the package's entry points, and every shell block that starts something names the test that
 * runs it or says why none does. Markers, in an HTML comment right before a block (blank lines
 * between are allowed):
 *   <!-- fragment -->                          a ts block that is deliberately not a whole file
 *   <!-- run by: test/FILE.test.ts: TITLE -->  a shell block run by the test titled TITLE in FILE
 *   <!-- not run: REASON -->                   a shell block no test runs, and why
 */

const root = fileURLToPath(new URL("..", import.meta.url));

/** Where the docs' imports resolve: the one place to change when an entry point moves. */
const ENTRY_POINTS: Record<string, string> = {
  "ws-channels": "packages/ws-channels/src/index.ts",
  "ws-channels/redis": "packages/ws-channels/src/redis.ts",
  "ws-channels/cluster": "packages/ws-channels/src/cluster.ts",
  "ws-channels/client": "packages/ws-channels/src/client.ts",
  "ws-channels/api": "packages/ws-channels/src/api.ts",
  "@ws-channels/server": "packages/server/src/server.ts",
};

/** A shell command that starts something (a server, a client, a benchmark, an example). */
const STARTS =
  /^(?:.*&&\s*)?(?:sudo\s+)?(?:[A-Z_]+=\S*\s+)*(?:npm (?:start|run (?:example|bench))|node |npx |nc |redis-server|systemctl (?:start|enable))/;

interface Block {
  file: string;
  /** Line of the opening fence, from 1. */
  line: number;
  lang: string;
  text: string;
  /** The HTML comment right before the fence, without `<!--` and `-->`, if any. */
  marker: string | undefined;
}

/** The fenced code blocks of a Markdown text, with the marker comment before each. */
function blocksOf(file: string, markdown: string): Block[] {
  const lines = markdown.split("\n");
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(`{3,})(\S*)\s*$/.exec(lines[i] as string);
    if (!open) continue;
    const fence = open[1] as string;
    let end = i + 1;
    while (end < lines.length && !(lines[end] as string).startsWith(fence)) end++;
    let before = i - 1;
    while (before >= 0 && (lines[before] as string).trim() === "") before--;
    const comment = /^<!--\s*(.*?)\s*-->$/.exec((lines[before] ?? "").trim());
    blocks.push({ file, line: i + 1, lang: open[2] as string, text: lines.slice(i + 1, end).join("\n"), marker: comment?.[1] });
    i = end;
  }
  return blocks;
}

const isTs = (block: Block): boolean => block.lang === "ts" || block.lang === "typescript";
const isShell = (block: Block): boolean => ["sh", "bash", "shell", "console"].includes(block.lang);

/** The commands of a shell block: its lines without comments, continuation lines joined. */
function commands(block: Block): string[] {
  return block.text
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((line) => line.replace(/(^|\s)#.*$/, "").trim())
    .filter((line) => line !== "");
}

/** The titles of the tests and suites in a test file's source. */
function titlesOf(source: string): string[] {
  return [...source.matchAll(/\b(?:it|test|describe)\(\s*(["'`])(.*?)\1/g)].map((match) => match[2] as string);
}

/**
 * What is wrong with the shell blocks' markers: a block that starts something without a marker,
 * a `not run` without a reason, a `run by` naming a test file or title that does not exist, an
 * `npm run` of a script package.json lacks. @returns one line per problem, with file and line.
 */
async function shellProblems(blocks: Block[], scripts: Record<string, string>): Promise<string[]> {
  const problems: string[] = [];
  for (const block of blocks.filter(isShell)) {
    const where = `${block.file}:${block.line}`;
    const lines = commands(block);
    for (const line of lines) {
      for (const [, script] of line.matchAll(/npm run ([\w:-]+)/g)) {
        if (!(script && script in scripts)) problems.push(`${where}: npm run ${script}: package.json has no such script`);
      }
    }
    if (!lines.some((line) => STARTS.test(line))) continue;
    const marker = block.marker ?? "";
    const notRun = /^not run:\s*(.*)$/.exec(marker);
    const runBy = /^run by:\s*(\S+?):\s+(.+)$/.exec(marker);
    if (notRun) {
      if (notRun[1] === "") problems.push(`${where}: "not run" needs a reason`);
    } else if (runBy) {
      const [, test, title] = runBy as unknown as [string, string, string];
      const path = join(root, test);
      if (!existsSync(path)) problems.push(`${where}: run by ${test}, which does not exist`);
      else if (!titlesOf(await readFile(path, "utf8")).some((t) => t.includes(title))) {
        problems.push(`${where}: ${test} has no test titled "${title}"`);
      }
    } else {
      problems.push(`${where}: this block starts something: mark it <!-- run by: test/FILE.test.ts: TITLE --> or <!-- not run: REASON -->`);
    }
  }
  return problems;
}

/**
 * Type-checks the ts blocks not marked `fragment`, each as a module of its own, with `tsc` and
 * `paths` mapping the package's entry points to ENTRY_POINTS. @returns tsc's exit code and its
 * errors, each with the Markdown file and line it comes from.
 */
async function typeCheck(blocks: Block[], dir: string): Promise<{ code: number; errors: string }> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const sources = new Map<string, Block>();
  for (const block of blocks.filter((b) => isTs(b) && b.marker !== "fragment")) {
    const name = `${block.file.replace(/[^\w]/g, "_")}_L${block.line}.ts`;
    sources.set(name, block);
    await writeFile(join(dir, name), `${block.text}\n`);
  }
  const paths = Object.fromEntries(Object.entries(ENTRY_POINTS).map(([name, path]) => [name, [join(root, path)]]));
  const config = {
    extends: join(root, "tsconfig.json"),
    compilerOptions: {
      noEmit: true,
      rootDir: root,
      moduleDetection: "force",
      // a snippet may show a value without using it
      noUnusedLocals: false,
      noUnusedParameters: false,
      paths,
    },
    include: [...sources.keys()],
  };
  await writeFile(join(dir, "tsconfig.json"), JSON.stringify(config, null, 2));
  const { code, output } = await new Promise<{ code: number; output: string }>((resolve) => {
    execFile(
      join(root, "node_modules", ".bin", "tsc"),
      ["-p", dir, "--pretty", "false"],
      { cwd: dir, timeout: 120_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, output: `${stdout}${stderr}` }),
    );
  });
  // block.ts(ROW,COL): error ... -> FILE.md:LINE:COL: error ...
  const errors = output.replace(/^(?:.*[\\/])?([\w.-]+\.ts)\((\d+),(\d+)\)/gm, (whole, name: string, row: string, col: string) => {
    const block = sources.get(name);
    return block ? `${block.file}:${block.line + Number(row)}:${col}` : whole;
  });
  return { code, errors };
}

async function docs(): Promise<Block[]> {
  const files = [
    "README.md",
    "packages/ws-channels/README.md",
    "packages/server/README.md",
    ...(await readdir(join(root, "docs"))).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`),
  ];
  const all = await Promise.all(files.map(async (file) => blocksOf(file, await readFile(join(root, file), "utf8"))));
  return all.flat();
}

const scripts = (JSON.parse(await readFile(join(root, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;

describe("the docs' code (README.md, docs/*.md)", () => {
  it("type-checks every ts block against the package's entry points", async () => {
    const blocks = await docs();
    expect(blocks.filter(isTs).length).toBeGreaterThan(5);
    const { code, errors } = await typeCheck(blocks, join(root, "build", "docs-check"));
    expect(errors).toBe("");
    expect(code).toBe(0);
  }, 120_000);

  it("marks every shell block that starts something as run by a named test, or not run with a reason", async () => {
    const blocks = await docs();
    expect(blocks.filter(isShell).length).toBeGreaterThan(5);
    expect(await shellProblems(blocks, scripts)).toEqual([]);
  });

  it("fails on a broken block, naming its file and line (the check can fail)", async () => {
    const broken = [
      "# page",
      "",
      "```ts",
      'import { Channels } from "ws-channels";',
      "new Channels().join();",
      "```",
      "",
      "<!-- fragment -->",
      "```ts",
      "this is not TypeScript, and is not checked",
      "```",
      "",
      "```sh",
      "npm start -- --port 9000",
      "npm run no-such-script",
      "```",
      "",
      "<!-- run by: test/docs.test.ts: no test has this title -->",
      "```sh",
      "node server.mjs",
      "```",
    ].join("\n");
    const blocks = blocksOf("broken.md", broken);
    const { code, errors } = await typeCheck(blocks, join(root, "build", "docs-check-broken"));
    expect(code).not.toBe(0);
    expect(errors).toMatch(/^broken\.md:5:\d+: error TS2554/m);
    expect(errors).not.toMatch(/broken\.md:10/);
    expect(await shellProblems(blocks, scripts)).toEqual([
      "broken.md:13: npm run no-such-script: package.json has no such script",
      expect.stringMatching(/^broken\.md:13: this block starts something/),
      'broken.md:19: test/docs.test.ts has no test titled "no test has this title"',
    ]);
  }, 120_000);
});
