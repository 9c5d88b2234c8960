import type { Socket } from "node:net";
import WebSocket, * as wsModule from "ws";
import { corkUntilFlush } from "./cork.js";
import { DELIVERED, FAILED, type Outcome, SLOW } from "./outcome.js";
import type { Bundle, Payload } from "./payload.js";

/*
 * Frame once, write the same bytes to every socket. This leans on three `ws` internals, checked on
 * every write and tested against a real `ws` client (test/transports.test.ts):
 * - `Sender.frame(data, options)`: the static framer `ws` itself uses (RFC 6455 §5.2), a named
 *   export of `ws`'s ESM entry that `@types/ws` does not declare;
 * - `ws._isServer`: server-side frames are unmasked, so one frame fits every socket (§5.1);
 * - `ws._socket` and `ws._sender._state` / `_queue` / `_firstFragment`: the frame goes straight to
 *   the net.Socket only while the sender is idle (not compressing, not queueing, not between the
 *   fragments of a message sent with `fin: false`), so it never lands inside another message.
 *   `bufferedAmount` stays exact, since `ws` computes it from the socket's own buffer.
 * When any of that does not hold (a client-side socket, another `ws` version, a busy sender) the
 * message goes through the public `ws.send`, which is correct and only slower.
 */

interface FrameOptions {
  fin: boolean;
  rsv1: boolean;
  opcode: number;
  mask: boolean;
  readOnly: boolean;
}

interface WsInternals {
  _isServer?: boolean;
  _socket?: Socket | null;
  _sender?: { _state?: unknown; _queue?: unknown[]; _firstFragment?: boolean } | null;
}

const { Sender } = wsModule as unknown as { Sender: { frame(data: Buffer, options: FrameOptions): Buffer[] } };
const canFrame = typeof Sender?.frame === "function";
const SENDER_IDLE = 0;
const TEXT = 0x1;
const BINARY = 0x2;

/** Builds one unmasked, final WebSocket data frame (text or binary opcode) holding `payload`. */
export function buildFrame(payload: Payload): Buffer {
  const parts = Sender.frame(payload.bytes, {
    fin: true,
    rsv1: false,
    opcode: payload.binary ? BINARY : TEXT,
    mask: false,
    readOnly: true,
  });
  return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
}

/**
 * Writes `payload` to an open WebSocket holding at most `highWaterMark` bytes unsent
 * (`bufferedAmount`, this turn's corked writes included), corking its socket until the end of
 * the tick.
 */
export function writeWebSocket(ws: WebSocket, payload: Payload, highWaterMark: number): Outcome {
  if (ws.readyState !== WebSocket.OPEN) return FAILED;
  if (ws.bufferedAmount > highWaterMark) return SLOW;
  const socket = idleSocket(ws);
  if (socket !== undefined) {
    payload.frame ??= buildFrame(payload);
    socket.write(payload.frame);
  } else {
    ws.send(payload.bytes, { binary: payload.binary });
  }
  return DELIVERED;
}

/**
 * Writes every message of `bundle` to an open WebSocket as one buffer of frames, if the whole
 * buffer keeps it within `highWaterMark` bytes unsent.
 * @returns undefined, having written nothing, when the batch would take it over the mark (so that
 *   the mark is checked message by message, as ever), or when frames cannot go straight to the
 *   socket (a client-side socket, a busy sender): then write the messages one by one.
 */
export function writeWebSocketBundle(ws: WebSocket, bundle: Bundle, highWaterMark: number): Outcome | undefined {
  if (ws.readyState !== WebSocket.OPEN) return FAILED;
  const frames = bundle.frames(buildFrame);
  if (ws.bufferedAmount + frames.length > highWaterMark) return undefined;
  const socket = idleSocket(ws);
  if (socket === undefined) return undefined;
  socket.write(frames);
  return DELIVERED;
}

/**
 * The server-side socket under `ws`, corked until the end of the tick, if a prebuilt frame may go
 * straight to it now (see above); else undefined, after corking it all the same.
 */
function idleSocket(ws: WebSocket): Socket | undefined {
  const { _isServer, _socket, _sender } = ws as unknown as WsInternals;
  if (!_socket) return undefined;
  corkUntilFlush(_socket);
  return canFrame &&
    _isServer === true &&
    _sender?._state === SENDER_IDLE &&
    _sender._queue?.length === 0 &&
    _sender._firstFragment === true
    ? _socket
    : undefined;
}
