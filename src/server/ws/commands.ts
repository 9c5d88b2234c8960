import type WebSocket from "ws";
import type { Channels } from "../../channels.js";
import { mayJoin } from "../auth.js";
import type { ClientMeta } from "../client-meta.js";
import type { RefusalReason } from "../metrics.js";
import type { Targets } from "../targets.js";
import type { ClosingRefusal } from "./close-codes.js";
import type { Command } from "./protocol.js";

/** What a command handler may use: the connection that sent the command, and what every connection shares. */
export interface Caller {
  readonly ws: WebSocket;
  /** Its id for targeted messages (verified, or its `?id=`), if any. */
  readonly id: string | undefined;
  /** Its IP address, for the refusal log. */
  readonly address: string;
  /** The channels its token lets it join (entries ending in `*` are prefixes); undefined: any. */
  readonly allowed: readonly string[] | undefined;
  readonly channels: Channels<ClientMeta>;
  readonly targets: Targets;
  readonly maxChannelsPerConnection: number;
  /** Counts and logs a refusal; the connection stays open. */
  refuse(reason: RefusalReason): void;
  /** Counts and logs a refusal, then closes the connection with its close code. */
  close(reason: ClosingRefusal): void;
  /**
   * Sends a reply in order with the broadcasts to the connection, and resolves once it is written:
   * the connection's next message waits for it, so a later close cannot overtake it.
   */
  reply(reply: object): Promise<void>;
}

/** Handles one kind of command; a returned promise holds the connection's next message back until it settles. */
type Handler<K extends Command["kind"]> = (caller: Caller, command: Extract<Command, { kind: K }>) => Promise<void> | void;

/**
 * One handler per command kind: a new command is a shape in `protocol.ts` and its handler here
 * (the mapped type makes a kind without a handler a type error).
 */
const COMMANDS: { readonly [K in Command["kind"]]: Handler<K> } = {
  join(caller, { channel }) {
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
    return channels.tryJoin(channel, ws, { id: caller.id }).then((joined) => (joined ? caller.reply({ joined: channel }) : forbidden()));
  },

  leave(caller, { channel }) {
    caller.channels.leave(channel, caller.ws);
    return caller.reply({ left: channel });
  },

  say(caller, { channel, say }) {
    if (!caller.channels.member(channel, caller.ws)) return caller.close("not_a_member");
    const text = encode(caller, { to: channel, say });
    if (text === undefined) return;
    return caller.channels.broadcast(channel, text).then(
      () => undefined,
      () => undefined, // rejected only once channels are closed, during shutdown
    );
  },

  targets(caller, { targets, payload }) {
    const text = encode(caller, payload);
    return text === undefined ? undefined : sendTo(caller, targets, text);
  },
};

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

/** Sends `text` to every connection of each listed id, on any node; replies with the ids connected nowhere. */
async function sendTo(caller: Caller, targets: readonly (string | number)[], text: string): Promise<void> {
  const unknown = await caller.targets.send(targets, text);
  if (unknown.length > 0) return caller.reply({ error: "unknown targets", targets: unknown });
}
