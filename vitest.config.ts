import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const source = (path: string): string => fileURLToPath(new URL(`./packages/${path}`, import.meta.url));

export default defineConfig({
  resolve: {
    // Tests run the packages' sources: the server's imports of the library resolve to the very
    // modules the tests import, not to dist/ (child processes run dist/, as users do).
    alias: [
      { find: /^ws-channels$/, replacement: source("ws-channels/src/index.ts") },
      { find: /^ws-channels\/(redis|cluster|client|api)$/, replacement: source("ws-channels/src/$1.ts") },
      { find: /^@ws-channels\/server$/, replacement: source("server/src/server.ts") },
    ],
  },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 20_000,
    // An unhandled rejection ends the worker instead of being reported after the fact; --expose-gc
    // lets the churn test measure the heap after a forced collection.
    execArgv: ["--unhandled-rejections=strict", "--expose-gc"],
  },
});
