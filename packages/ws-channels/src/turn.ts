/**
 * One time budget per event-loop turn, shared by every writer: a fan-out checks `spent()` as it
 * goes and, once the turn's budget is used, awaits `nextTurn()`. All writers wait on the same
 * `setImmediate`, so the turn ends for all of them at once instead of each taking a full budget.
 * Between slices, timers fire and other sockets are read and written.
 */
export class TurnClock {
  readonly #budgetMs: number;
  #deadline = -1;
  #next: Promise<void> | undefined;

  /** @param budgetMs how long fan-out may hold the event loop in one turn, in ms (> 0). */
  constructor(budgetMs: number) {
    this.#budgetMs = budgetMs;
  }

  /** Whether this turn's budget is used up; the first call in a turn starts the budget. */
  spent(): boolean {
    const now = performance.now();
    if (this.#deadline < 0) {
      this.#deadline = now + this.#budgetMs;
      void this.#schedule(); // the budget ends with the turn, whether or not anyone awaits it
      return false;
    }
    return now >= this.#deadline;
  }

  /** Resolves in the next turn, which starts with a fresh budget. */
  nextTurn(): Promise<void> {
    return this.#schedule();
  }

  #schedule(): Promise<void> {
    this.#next ??= new Promise((resolve) => {
      setImmediate(() => {
        this.#next = undefined;
        this.#deadline = -1;
        resolve();
      });
    });
    return this.#next;
  }
}
