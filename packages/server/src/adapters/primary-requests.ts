/**
 * A worker's requests to the cluster primary still waiting for their answer, by number. An answer
 * is handed to its callback inside the IPC handler that received it: IPC messages that arrive in one
 * read are all handled before any promise continuation, so whatever must happen before the
 * messages after the answer (filling a mirror, joining a member) happens there, not after an await.
 */
export class PrimaryRequests<A> {
  readonly #waiting = new Map<number, (answer: A | undefined) => void>();
  #next = 0;

  /** Registers a request. @returns its number, for the message to the primary to carry. */
  open(answered: (answer: A | undefined) => void): number {
    const request = this.#next++;
    this.#waiting.set(request, answered);
    return request;
  }

  /** Hands `answer` to request `request`'s callback, once; undefined means none can come (the primary is gone). */
  answer(request: number, answer: A | undefined): void {
    const answered = this.#waiting.get(request);
    if (answered === undefined) return;
    this.#waiting.delete(request);
    answered(answer);
  }

  /** Answers every waiting request with undefined. */
  close(): void {
    for (const request of [...this.#waiting.keys()]) this.answer(request, undefined);
  }
}
