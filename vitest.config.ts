import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 20_000,
    // An unhandled rejection ends the worker instead of being reported after the fact; --expose-gc
    // lets the churn test measure the heap after a forced collection.
    execArgv: ["--unhandled-rejections=strict", "--expose-gc"],
  },
});
