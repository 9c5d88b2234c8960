/**
 * Runs tasks one after another: a task that returns a promise holds back the ones after it until
 * it settles, so replies leave a connection in the order its messages came in. A task that throws
 * or rejects calls `onError` instead of taking the process down.
 */
export function serial(onError: () => void): (task: () => Promise<void> | void) => void {
  let tail: Promise<void> | undefined;
  const guarded = (task: () => Promise<void> | void): Promise<void> | void => {
    try {
      return task()?.catch(onError);
    } catch {
      return onError();
    }
  };
  return (task) => {
    if (tail === undefined) {
      const wait = guarded(task);
      if (wait === undefined) return;
      tail = wait;
    } else {
      tail = tail.then(() => guarded(task));
    }
    const mine = tail;
    void mine.then(() => {
      if (tail === mine) tail = undefined;
    });
  };
}
