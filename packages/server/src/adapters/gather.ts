/** How long a node waits for the other nodes' answers to a question (`Adapter.ask`), in ms. */
export const ASK_TIMEOUT_MS = 2_000;

/**
 * The questions this node is waiting on answers to, by number: each gathers the answers of the
 * nodes it was sent to and resolves once all of them answered or `timeoutMs` passed, whichever
 * comes first, with those that came. An answer to no question (late, or forged) is dropped.
 */
export class Gathering {
  readonly #open = new Map<number, { answers: string[]; expected: number; done: () => void }>();
  readonly #timeoutMs: number;
  #next = 0;

  constructor(timeoutMs = ASK_TIMEOUT_MS) {
    this.#timeoutMs = timeoutMs;
  }

  /**
   * Opens a question and sends it with `send`, given its number.
   * @param send sends it and returns how many nodes will answer (a promise where that is known later).
   * @returns the answers that came in time.
   */
  ask(send: (request: number) => number | Promise<number>): Promise<string[]> {
    const request = this.#next++;
    return new Promise((resolve) => {
      const answers: string[] = [];
      const done = (): void => {
        clearTimeout(timer);
        this.#open.delete(request);
        resolve(answers);
      };
      const timer = setTimeout(done, this.#timeoutMs).unref();
      const question = { answers, expected: Number.POSITIVE_INFINITY, done };
      this.#open.set(request, question);
      Promise.resolve()
        .then(() => send(request))
        .then((expected) => {
          question.expected = expected;
          if (answers.length >= expected) done();
        }, done);
    });
  }

  /** Takes one node's answer to question `request`. */
  answer(request: number, answer: string): void {
    const question = this.#open.get(request);
    if (question === undefined) return;
    question.answers.push(answer);
    if (question.answers.length >= question.expected) question.done();
  }

  /** Resolves every open question with what it has. */
  close(): void {
    for (const { done } of [...this.#open.values()]) done();
  }
}
