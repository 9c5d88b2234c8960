/** Something that emits events and lets a listener go: a broker, an ioredis connection. */
interface Emitter {
  on(event: string, listener: () => void): unknown;
  off(event: string, listener: () => void): unknown;
}

/**
 * Waits for `emitter` to emit `event`, at most `ms`.
 * @returns true if it did, false once `ms` passed first; the listener is removed either way.
 */
export function emitted(emitter: Emitter, event: string, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (happened: boolean): void => {
      clearTimeout(timer);
      emitter.off(event, onEvent);
      resolve(happened);
    };
    const onEvent = (): void => done(true);
    const timer = setTimeout(() => done(false), ms);
    emitter.on(event, onEvent);
  });
}

/** Waits for `promise` to settle, at most `ms`; what it does after that is left to it. */
export async function settledWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise.catch(() => undefined), new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/**
 * Calls `hook` (an operator's `authenticate`, `authorize`, `authorizeTarget`: sync or async) and
 * waits for its answer at most `ms`, so that a hook that never answers cannot hold a connection.
 * @param name how the timeout's error names the hook.
 * @returns its answer; rejects with what it threw or rejected with, or with an Error
 *   `<name> did not answer within <ms> ms` once `ms` passed first (what it does after that is left to it).
 */
export function answered<T>(hook: () => T | PromiseLike<T>, ms: number, name: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${name} did not answer within ${ms} ms`)), ms).unref();
  });
  // a synchronous throw rejects `answer` too
  const answer = new Promise<T>((resolve) => resolve(hook()));
  return Promise.race([answer, late]).finally(() => clearTimeout(timer));
}
