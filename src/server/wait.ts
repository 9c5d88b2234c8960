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
