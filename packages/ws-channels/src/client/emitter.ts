type Listener<E> = (event: E) => void;

/** Typed events: `on` returns a function that removes the listener. */
export class Emitter<Events extends object> {
  readonly #listeners = new Map<keyof Events, Set<Listener<never>>>();

  /**
   * Calls `listener` with each `type` event, in order.
   * @returns a function that removes it.
   */
  on<K extends keyof Events>(type: K, listener: Listener<Events[K]>): () => void {
    const set = this.#listeners.get(type) ?? new Set();
    this.#listeners.set(type, set);
    set.add(listener);
    return () => this.off(type, listener);
  }

  /** Removes a listener `on` added. */
  off<K extends keyof Events>(type: K, listener: Listener<Events[K]>): void {
    this.#listeners.get(type)?.delete(listener);
  }

  /** Tells every listener; one that throws is reported apart and does not stop the others or the client. */
  protected emit<K extends keyof Events>(type: K, event: Events[K]): void {
    const set = this.#listeners.get(type) as Set<Listener<Events[K]>> | undefined;
    if (set === undefined) return;
    for (const listener of [...set]) {
      try {
        listener(event);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}
