import { mayJoin } from "../auth.js";
import type { Caller } from "./caller.js";
import { joinWithHistory } from "./history-join.js";
import { joinedReply, nextRef, type PresenceMode, refIn } from "./presence.js";
import type { Command } from "./protocol.js";

/** Handles one kind of command; a returned promise holds the connection's next message back until it settles. */
type Handler<K extends Command["kind"]> = (caller: Caller, command: Extract<Command, { kind: K }>) => Promise<void> | void;

/**
 * One handler per command kind: a new command is a shape in `protocol.ts` and its handler here
 * (the mapped type makes a kind without a handler a type error).
 */
const COMMANDS: { readonly [K in Command["kind"]]: Handler<K> } = {
  join(caller, { channel, recover, presence }) {
    const { channels, ws } = caller;
    if (!channels.member(channel, ws) && channels.channelsOf(ws).length >= caller.maxChannelsPerConnection) {
      caller.refuse("too_many_channels");
      return caller.reply({ error: "too many channels", join: channel });
    }
    const forbidden = (): Promise<void> => {
      caller.refuse("forbidden");
      return caller.reply({ error: "forbidden", join: channel });
    };
    if (!mayJoin(caller.allowed, channel)) return forbidden();
    const meta = { id: caller.id, ref: nextRef(), ...(caller.info !== undefined && { info: caller.info }) };
    if (caller.history !== undefined) return joinWithHistory(caller, caller.history, channel, meta, recover, presence, forbidden);
    return channels.tryJoin(channel, ws, meta).then((joined) => {
      if (!joined) return forbidden();
      return presence === undefined ? caller.reply({ joined: channel }) : listen(caller, channel, presence);
    });
  },

  leave(caller, { channel }) {
    caller.channels.leave(channel, caller.ws);
    caller.presence.unlisten(channel, caller.ws);
    return caller.reply({ left: channel });
  },

  presence(caller, { channel }) {
    if (!caller.channels.member(channel, caller.ws)) return caller.reply({ error: "not a member", presence: channel });
    return caller.presence.entries(channel).then(({ entries, partial }) => caller.reply({ presence: channel, members: entries, partial }));
  },

  say(caller, { channel, say }) {
    if (!caller.channels.member(channel, caller.ws)) return caller.close("not_a_member");
    // `from` is the server's word for who said it: a client cannot forge it
    const from = caller.id === undefined ? {} : { from: caller.id };
    const text = encode(caller, caller.history === undefined ? { to: channel, say, ...from } : { say, ...from });
    if (text === undefined) return;
    // kept where the adapter keeps says, which numbers it and delivers it to every node
    if (caller.history !== undefined) return caller.history.store.say(channel, text);
    return caller.channels.broadcast(channel, text).then(
      () => undefined,
      () => undefined, // rejected only once channels are closed, during shutdown
    );
  },

  targets(caller, { targets, payload }) {
    if (targets.length > caller.maxTargets) {
      caller.refuse("too_many_targets");
      return caller.reply({ error: "too many targets" });
    }
    // a target costs one token of the rate limit: the message's own pays for the first
    if (targets.length > 1 && !caller.charge(targets.length - 1)) return;
    // wrapped, so that no client can send another a frame that reads as the server's own
    const text = encode(caller, { from: caller.id ?? null, payload });
    return text === undefined ? undefined : sendTo(caller, targets, text);
  },

  async refresh(caller, { token }) {
    const verified = await caller.verify(token);
    if (verified === undefined) return caller.reply({ error: "refresh unsupported" });
    if ("refused" in verified) {
      // the old token holds until its expiry: the client may try another
      caller.refuse("token", verified.refused);
      return caller.reply({ error: "token invalid" });
    }
    if (verified.id !== caller.id) return caller.close("token_subject");
    const expiresAt = caller.renew(verified);
    return caller.reply({ refreshed: expiresAt === undefined || !Number.isFinite(expiresAt) ? null : Math.floor(expiresAt / 1000) });
  },

  ping(caller, { ping }) {
    // a client's liveness check: the reply, written in order, shows the connection and the server both work
    return caller.reply({ pong: ping });
  },
};

/**
 * Makes a connection that has just joined `channel` a presence listener: its `joined` reply
 * carries the snapshot and goes out before any diff (see `Presence.listen`).
 */
async function listen(caller: Caller, channel: string, mode: PresenceMode): Promise<void> {
  const ref = refIn(caller.channels, channel, caller.ws);
  await caller.presence.listen(channel, caller.ws, mode, (snapshot) => joinedReply(channel, ref, snapshot, caller.req));
}

/** Runs `command` for the connection that sent it. */
export function run(caller: Caller, command: Command): Promise<void> | void {
  // TypeScript cannot pair `command` with its handler through the union: the table's type does.
  const handler = COMMANDS[command.kind] as Handler<Command["kind"]>;
  return handler(caller, command);
}

/**
 * `value` as JSON text, or undefined after closing the connection 3000 `invalid payload`:
 * re-encoding what JSON.parse accepted can still throw (nesting deeper than the stack), and such
 * a message is as invalid as any other.
 */
function encode(caller: Caller, value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch {
    caller.close("invalid_payload");
    return undefined;
  }
}

/**
 * Sends `text` to every connection of each listed id the `authorizeTarget` hook allows, on any
 * node; replies with the ids connected nowhere or refused by the hook, alike and in the order given.
 */
async function sendTo(caller: Caller, targets: readonly (string | number)[], text: string): Promise<void> {
  const refused = await refusedTargets(caller, targets);
  const allowed = refused.size === 0 ? targets : targets.filter((target) => !refused.has(String(target)));
  let unknown = await caller.targets.send(allowed, text);
  if (refused.size > 0) {
    const missing = new Set(unknown.map(String));
    unknown = targets.filter((target) => refused.has(String(target)) || missing.has(String(target)));
  }
  if (unknown.length > 0) return caller.reply({ error: "unknown targets", targets: unknown });
}

/** The ids among `targets` the caller may not send to: the hook answered false, threw or rejected. */
async function refusedTargets(caller: Caller, targets: readonly (string | number)[]): Promise<Set<string>> {
  const { authorizeTarget, id: from } = caller;
  const refused = new Set<string>();
  if (authorizeTarget === undefined) return refused;
  const ids = [...new Set(targets.map(String))];
  const allowed = await Promise.all(
    ids.map((to) =>
      Promise.resolve()
        .then(() => authorizeTarget(from, to))
        .catch(() => false),
    ),
  );
  for (let i = 0; i < ids.length; i++) if (allowed[i] !== true) refused.add(ids[i] as string);
  return refused;
}
