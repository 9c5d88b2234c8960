/*
 * A minimal WebSocket client on node:net (RFC 6455), lean enough that 10,000 of them in one process
 * cost less than the server they measure: the handshake is written by hand, frames are parsed
 * straight off the socket, and a received text message is handed over as (buffer, start, end)
 * without copying or decoding it.
 */
import { createHash, randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"; // RFC 6455 §1.3
const HEADER_END = Buffer.from("\r\n\r\n");
const OP_CONTINUATION = 0x0;
const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const READ_BUFFER = Buffer.allocUnsafe(256 * 1024); // shared by every client: a read is parsed before the next one

/** Called for every complete data message: its bytes are `buffer[start..end)`, valid only during the call. */
export type OnMessage = (client: RawClient, buffer: Buffer, start: number, end: number) => void;

/** Builds one masked, final client frame. The mask key is all zeros (allowed by §5.3), so the payload is copied as is. */
export function clientFrame(opcode: number, payload: Buffer): Buffer {
  const length = payload.length;
  const head = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const frame = Buffer.alloc(head + 4 + length); // zero-filled: the mask key is the 4 zero bytes after the header
  frame[0] = 0x80 | opcode;
  if (head === 2) frame[1] = 0x80 | length;
  else if (head === 4) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  payload.copy(frame, head + 4);
  return frame;
}

/** One raw WebSocket client connection to 127.0.0.1. */
export class RawClient {
  /** Set once the socket closed or failed after the handshake. */
  closed = false;
  private socket: Socket | undefined;
  private pending: Buffer | undefined; // the start of a frame whose rest has not arrived yet
  private fragments: Buffer[] | undefined; // a fragmented message being reassembled

  constructor(
    readonly index: number,
    private readonly onMessage: OnMessage,
    private readonly onClose: (client: RawClient) => void,
  ) {}

  /** Runs `sends` with the socket corked, so that the frames it sends leave in one write. */
  batch(sends: () => void): void {
    this.socket?.cork();
    sends();
    this.socket?.uncork();
  }

  /** Opens the TCP connection and does the opening handshake; resolves once the server answered 101 with the right accept key. */
  open(port: number, path: string): Promise<void> {
    const key = randomBytes(16).toString("base64");
    const accept = createHash("sha1")
      .update(key + GUID)
      .digest("base64");
    return new Promise((resolve, reject) => {
      let head: Buffer | undefined = Buffer.alloc(0); // the HTTP response so far; undefined once upgraded
      const onHandshake = (chunk: Buffer): void => {
        head = Buffer.concat([head!, chunk]);
        const end = head.indexOf(HEADER_END);
        if (end < 0) return;
        const response = head.toString("latin1", 0, end);
        if (!/^HTTP\/1\.1 101 /.test(response)) return reject(new Error(`handshake refused: ${response.split("\r\n")[0]}`));
        if (!new RegExp(`^sec-websocket-accept: *${accept.replace(/[+/]/g, "\\$&")}\\s*$`, "im").test(response)) {
          return reject(new Error("handshake: wrong Sec-WebSocket-Accept"));
        }
        const rest = head.subarray(end + 4);
        head = undefined;
        socket.on("close", () => this.markClosed());
        resolve();
        // Frames the server sent right after its 101 (engine.io's open packet) may share the chunk.
        if (rest.length > 0) this.read(rest);
      };
      // `onread` hands every read over in one shared buffer, skipping the stream machinery and a
      // Buffer per read: the cheapest way for one process to read 10,000 sockets.
      const socket = connect({
        host: "127.0.0.1",
        port,
        noDelay: true,
        onread: {
          buffer: READ_BUFFER,
          callback: (size) => {
            const chunk = READ_BUFFER.subarray(0, size);
            if (head) onHandshake(chunk);
            else this.read(chunk);
            return true; // false would pause the socket
          },
        },
      });
      this.socket = socket;
      socket.once("close", () => reject(new Error("closed during the handshake")));
      socket.on("error", (error) => reject(error)); // after the handshake, "close" reports it
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
  }

  /** Sends one text message. */
  sendText(text: string): void {
    if (!this.closed) this.socket?.write(clientFrame(OP_TEXT, Buffer.from(text)));
  }

  /** Drops the connection with a TCP RST, so no TIME_WAIT port is left behind by a 10,000-client run. */
  reset(): void {
    this.closed = true;
    const socket = this.socket;
    if (socket && !socket.destroyed) socket.resetAndDestroy();
  }

  private markClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose(this);
  }

  /** Parses every complete frame in `chunk` (plus what was pending); keeps an incomplete tail for the next chunk. */
  private read(chunk: Buffer): void {
    const buffer = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    const size = buffer.length;
    let at = 0;
    while (size - at >= 2) {
      const b0 = buffer[at]!;
      const b1 = buffer[at + 1]!;
      let length = b1 & 0x7f;
      let head = 2;
      if (length === 126) {
        if (size - at < 4) break;
        length = buffer.readUInt16BE(at + 2);
        head = 4;
      } else if (length === 127) {
        if (size - at < 10) break;
        length = buffer.readUInt32BE(at + 2) * 2 ** 32 + buffer.readUInt32BE(at + 6);
        head = 10;
      }
      if (b1 & 0x80) return this.fail(); // a server must not mask its frames (§5.1)
      if (size - at < head + length) break;
      this.frame(b0 & 0x80, b0 & 0x0f, buffer, at + head, at + head + length);
      at += head + length;
    }
    // A copy: the tail of `buffer` lives in the shared read buffer, which the next read overwrites.
    if (at < size) this.pending = Buffer.from(buffer.subarray(at));
  }

  private frame(fin: number, opcode: number, buffer: Buffer, start: number, end: number): void {
    if (opcode === OP_TEXT || opcode === OP_BINARY || opcode === OP_CONTINUATION) {
      if (fin && !this.fragments) return this.onMessage(this, buffer, start, end);
      this.fragments ??= [];
      this.fragments.push(Buffer.from(buffer.subarray(start, end)));
      if (!fin) return;
      const whole = Buffer.concat(this.fragments);
      this.fragments = undefined;
      return this.onMessage(this, whole, 0, whole.length);
    }
    if (opcode === OP_PING) return void this.socket?.write(clientFrame(0xa, buffer.subarray(start, end)));
    if (opcode === OP_CLOSE) {
      // Echo the close code (§5.5.1), then drop the connection: the benchmark has no use for it any more.
      this.socket?.write(clientFrame(OP_CLOSE, buffer.subarray(start, Math.min(end, start + 2))));
      this.socket?.end();
      this.markClosed();
    }
  }

  private fail(): void {
    this.markClosed();
    this.reset();
  }
}
