/** What writing one message to one member did. */
export const DELIVERED = 0;
/** The member is closed or closing, or its write threw: it leaves every channel. */
export const FAILED = 1;
/** The member's buffered bytes were over the high-water mark: nothing was written. */
export const SLOW = 2;

export type Outcome = typeof DELIVERED | typeof FAILED | typeof SLOW;
