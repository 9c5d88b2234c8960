import cluster, { type Worker } from "node:cluster";
import { fromWorkers } from "ws-channels/cluster";
import type { ClientMeta } from "../client-meta.js";
import type { PresenceToPrimary, PresenceToWorker } from "./cluster-presence.js";

/** One channel's changes in the primary's turn, by key: what it left (true) and what it joined. */
interface Change {
  leave: boolean;
  join?: ClientMeta;
}

/**
 * In the primary, every worker's presence (the other side of `ClusterPresence`): each channel's
 * entries, keyed `WORKER/KEY`, and which workers listen to it. The changes of a channel are
 * gathered per turn (a join and a leave of one entry cancel) and sent as one diff to each
 * listening worker. A listen sends the channel's diff so far first, then (to a worker not yet
 * listening) the snapshot, in one step. A worker that exits leaves every channel at once: one
 * diff per channel. Call before forking.
 * @returns a function that stops serving and forgets everything.
 */
export function serveClusterPresence(): () => void {
  const entries = new Map<string, Map<string, ClientMeta>>();
  const listeners = new Map<string, Set<Worker>>();
  /** Per worker: the channels it has entries in, and those it listens to. */
  const workers = new Map<Worker, { present: Set<string>; listening: Set<string> }>();
  const turn = new Map<string, Map<string, Change>>();
  let immediate: NodeJS.Immediate | undefined;

  const of = (worker: Worker): { present: Set<string>; listening: Set<string> } => {
    return ensure(workers, worker, () => ({ present: new Set<string>(), listening: new Set<string>() }));
  };
  const changed = (channel: string, key: string, meta?: ClientMeta): void => {
    const changes = ensure(turn, channel, () => new Map<string, Change>());
    const change = changes.get(key);
    if (meta !== undefined) {
      if (change === undefined) changes.set(key, { leave: false, join: meta });
      else change.join = meta;
    } else if (change === undefined) changes.set(key, { leave: true });
    else if (!change.leave)
      changes.delete(key); // joined in this turn: nothing happened
    else delete change.join; // back to what it had before the turn
    immediate ??= setImmediate(flushAll);
  };
  const join = (channel: string, key: string, meta: ClientMeta): void => {
    ensure(entries, channel, () => new Map<string, ClientMeta>()).set(key, meta);
    changed(channel, key, meta);
  };
  const leave = (channel: string, key: string): void => {
    const present = entries.get(channel);
    if (present?.delete(key) !== true) return;
    if (present.size === 0) entries.delete(channel);
    changed(channel, key);
  };
  const flush = (channel: string): void => {
    const changes = turn.get(channel);
    if (changes === undefined) return;
    turn.delete(channel);
    const diff: Extract<PresenceToWorker, { wsChannels: "presenceDiff" }> = { wsChannels: "presenceDiff", channel, joins: [], leaves: [] };
    for (const [key, { leave, join }] of changes) {
      if (leave) diff.leaves.push(key);
      if (join !== undefined) diff.joins.push([key, join]);
    }
    if (diff.joins.length + diff.leaves.length === 0) return;
    for (const worker of listeners.get(channel) ?? []) send(worker, diff);
  };
  const flushAll = (): void => {
    immediate = undefined;
    for (const channel of [...turn.keys()]) flush(channel);
  };
  const unlisten = (worker: Worker, channel: string): void => {
    const set = listeners.get(channel);
    set?.delete(worker);
    if (set?.size === 0) listeners.delete(channel);
    workers.get(worker)?.listening.delete(channel);
  };

  const stop = fromWorkers<PresenceToPrimary>({
    presenceChanges: ({ ops }, worker) => {
      const { present } = of(worker);
      for (const [channel, key, meta] of ops) {
        if (meta === undefined) leave(channel, `${worker.id}/${key}`);
        else {
          present.add(channel);
          join(channel, `${worker.id}/${key}`, meta);
        }
      }
    },
    presenceListen: ({ channel, request }, worker) => {
      flush(channel); // the diffs so far go to those listening already, and are in the snapshot
      const { listening } = of(worker);
      if (listening.has(channel)) return send(worker, { wsChannels: "presenceListened", request });
      listening.add(channel);
      listeners.set(channel, (listeners.get(channel) ?? new Set()).add(worker));
      send(worker, { wsChannels: "presenceListened", request, snapshot: [...(entries.get(channel) ?? [])] });
    },
    presenceUnlisten: ({ channel }, worker) => unlisten(worker, channel),
    presenceRead: ({ channel, request }, worker) => {
      send(worker, { wsChannels: "presenceEntries", request, metas: [...(entries.get(channel)?.values() ?? [])] });
    },
  });

  const onExit = (worker: Worker): void => {
    const state = workers.get(worker);
    if (state === undefined) return;
    workers.delete(worker);
    for (const channel of state.listening) unlisten(worker, channel);
    const mine = `${worker.id}/`;
    for (const channel of state.present)
      for (const key of [...(entries.get(channel)?.keys() ?? [])]) if (key.startsWith(mine)) leave(channel, key);
  };
  cluster.on("exit", onExit);
  return () => {
    stop();
    cluster.off("exit", onExit);
    clearImmediate(immediate);
    for (const map of [entries, listeners, workers, turn]) map.clear();
  };
}

/** `map`'s value at `key`, made and set first if there is none. */
function ensure<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let value = map.get(key);
  if (value === undefined) {
    value = make();
    map.set(key, value);
  }
  return value;
}

function send(worker: Worker, message: PresenceToWorker): void {
  // the worker may die with a message in flight: a failed send is its `exit`'s business
  if (worker.isConnected()) worker.send(message, undefined, () => undefined);
}
