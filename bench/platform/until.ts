/**
 * Resolves once `done()` holds, polled every 5 ms, at most `ms`; then rejects naming `what`, with
 * `detail()` (the output so far, say) after it.
 */
export async function until(done: () => boolean, what: string, ms = 120_000, detail = (): string => ""): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms${detail() === "" ? "" : `:\n${detail()}`}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
