/*
 * Type-level tests of the public API: checked by `tsc -p test/tsconfig.json` (`npm run typecheck`,
 * part of `npm test`), never run. Each `@ts-expect-error` is a call that must not compile: if it
 * ever does, tsc reports the directive as unused and the check fails.
 */
import type { Socket } from "node:net";
import { expectTypeOf } from "vitest";
import type WebSocket from "ws";
import {
  type BroadcastResult,
  type ChannelId,
  Channels,
  type Member,
  type Membership,
  type MembershipCause,
  type MembershipListener,
  type PoolStats,
  type Sharder,
} from "../packages/ws-channels/src/index.js";

declare const ws: WebSocket;
declare const socket: Socket;
const sendable = { send: (data: string | Uint8Array): void => void data };

// Meta is inferred in reduce, from the type argument
const users = new Channels<{ user: string; age: number }>();
users.reduce("room", 0, (acc, membership) => {
  expectTypeOf(membership).toEqualTypeOf<Membership<{ user: string; age: number }>>();
  expectTypeOf(membership.meta.user).toBeString();
  return acc + membership.meta.age;
});
expectTypeOf(users.reduce("room", [] as string[], (acc, { meta }) => [...acc, meta.user])).toEqualTypeOf<string[]>();

// join's meta is required exactly when Meta does not allow undefined
users.join("room", ws, { user: "ann", age: 3 });
// @ts-expect-error meta is required for Channels<{ user; age }>
users.join("room", ws);
// @ts-expect-error meta of the wrong shape
users.join("room", ws, { user: "ann" });
const plain = new Channels();
plain.join("room", socket);
plain.join("room", socket, undefined);
const maybe = new Channels<{ user: string } | undefined>();
maybe.join("room", sendable);
maybe.join("room", sendable, { user: "bob" });
expectTypeOf(maybe.tryJoin("room", ws)).toEqualTypeOf<Promise<boolean>>();
// @ts-expect-error tryJoin follows the same rule as join
void users.tryJoin("room", ws);

// both sharder forms
new Channels({ sharder: (channel: ChannelId) => (channel === "big" ? 16 : 1) });
new Channels({ sharder: { shards: () => 4 } });
expectTypeOf<{ shards(channel: ChannelId): number }>().toExtend<Sharder>();
// @ts-expect-error a sharder answers a number
new Channels({ sharder: () => "4" });

// broadcast's result
expectTypeOf(plain.broadcast("room", "text")).toEqualTypeOf<Promise<BroadcastResult>>();
expectTypeOf<BroadcastResult>().toEqualTypeOf<{ delivered: number; failed: number; dropped: number }>();
void plain.broadcast(7, new Uint8Array([1, 2]), { except: ws });
expectTypeOf(plain.send(ws, "x")).toEqualTypeOf<Promise<boolean>>();
expectTypeOf(plain.leave(ws)).toBeNumber();
expectTypeOf(plain.leave("room", ws)).toBeBoolean();
expectTypeOf(plain.channelsOf(ws)).toEqualTypeOf<ChannelId[]>();

// calls that must not compile
// @ts-expect-error a channel is a string or a number
plain.join({ name: "room" }, ws);
// @ts-expect-error a channel is a string or a number
void plain.broadcast(true, "text");
// @ts-expect-error a member needs send(data)
plain.join("room", { write: () => true });
// @ts-expect-error a message is a string or bytes
void plain.broadcast("room", { text: "hi" });
// @ts-expect-error no such option
new Channels({ shards: 4 });
// @ts-expect-error writers is a number
new Channels({ writers: "10" });
// @ts-expect-error slowConsumer is "skip" or "close"
new Channels({ slowConsumer: "drop" });
// @ts-expect-error no such broadcast option
void plain.broadcast("room", "text", { exclude: ws });

// what a member may be
expectTypeOf(ws).toExtend<Member>();
expectTypeOf(socket).toExtend<Member>();
expectTypeOf(sendable).toExtend<Member>();

// the member type: what goes in comes back, with no cast
const sockets = new Channels<{ user: string }, WebSocket>();
sockets.join("room", ws, { user: "ann" });
sockets.reduce("room", 0, (n, membership) => {
  expectTypeOf(membership).toEqualTypeOf<Membership<{ user: string }, WebSocket>>();
  expectTypeOf(membership.member).toEqualTypeOf<WebSocket>();
  membership.member.send("hi"); // a WebSocket method, without a cast
  return n + 1;
});
expectTypeOf(sockets.reduce("room", [] as WebSocket[], (acc, { member }) => [...acc, member])).toEqualTypeOf<WebSocket[]>();
expectTypeOf(sockets.channelsOf(ws)).toEqualTypeOf<ChannelId[]>();
void sockets.broadcast("room", "x", { except: ws });
new Channels<undefined, WebSocket>({
  authorize: (_channel, member) => {
    expectTypeOf(member).toEqualTypeOf<WebSocket>();
    return true;
  },
});
// @ts-expect-error a Channels of WebSockets takes no net.Socket
sockets.join("room", socket, { user: "ann" });
// @ts-expect-error nor leaves one
sockets.leave(socket);
// @ts-expect-error nor skips one in a broadcast
void sockets.broadcast("room", "x", { except: socket });
// @ts-expect-error a member type must be a Member
new Channels<undefined, { write(): void }>();
// the default member type is any Member
plain.reduce("room", 0, (n, { member }) => {
  expectTypeOf(member).toEqualTypeOf<Member>();
  return n;
});

// observing membership: (channel, member, meta, cause), every channel or one; returns a remover
sockets.observe("room", (channel, member, meta, cause) => {
  expectTypeOf(channel).toEqualTypeOf<ChannelId>();
  expectTypeOf(member).toEqualTypeOf<WebSocket>();
  expectTypeOf(meta).toEqualTypeOf<{ user: string }>();
  expectTypeOf(cause).toEqualTypeOf<MembershipCause>();
});
expectTypeOf(sockets.observe(() => undefined)).toEqualTypeOf<() => void>();
expectTypeOf<MembershipCause>().toEqualTypeOf<"join" | "leave" | "close" | "failed" | "slow">();
const listener: MembershipListener<{ user: string }, WebSocket> = (_channel, member) => void member.ping();
sockets.observe(listener);
// @ts-expect-error a listener for other members
sockets.observe((_channel: ChannelId, member: Socket) => void member.destroy());
// @ts-expect-error a channel is a string or a number
sockets.observe(true, () => undefined);

// stats: the writer pool's state is `pool`
expectTypeOf(plain.stats().pool).toEqualTypeOf<PoolStats>();
expectTypeOf<PoolStats>().toEqualTypeOf<{ active: number; pending: number; size: number }>();
