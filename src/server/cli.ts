#!/usr/bin/env node
import { Command, InvalidArgumentError, Option } from "commander";
import type { SlowConsumerPolicy } from "../options.js";
import { url } from "./address.js";
import { DEFAULTS, startServer } from "./server.js";

function integer(min: number, max: number) {
  return (value: string): number => {
    const number = Number(value);
    if (!/^\d+$/.test(value) || number < min || number > max) {
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    }
    return number;
  };
}

const options = new Command("ws-channels")
  .description("WebSocket channels server with a TCP broadcast port")
  .option("--host <address>", "address to listen on", DEFAULTS.host)
  .option("--port <port>", "WebSocket port (0: any free port)", integer(0, 65535), DEFAULTS.port)
  .option("--tcp-port <port>", "TCP broadcast port (0: any free port)", integer(0, 65535), DEFAULTS.tcpPort)
  .option(
    "--max-frame-size <bytes>",
    "largest WebSocket message (frame, or fragmented message) a client may send; larger: close 1009",
    integer(1, 2 ** 31 - 1),
    DEFAULTS.maxFrameSize,
  )
  .option("--max-channel-length <chars>", "longest channel name", integer(1, 2 ** 20), DEFAULTS.maxChannelLength)
  .option(
    "--high-water-mark <bytes>",
    "unsent bytes over which a client is a slow consumer",
    integer(1, 2 ** 31 - 1),
    DEFAULTS.highWaterMark,
  )
  .option(
    "--max-channels-per-connection <n>",
    "channels one WebSocket connection may be in",
    integer(1, 2 ** 31 - 1),
    DEFAULTS.maxChannelsPerConnection,
  )
  .option(
    "--max-connections-per-ip <n>",
    "open WebSocket connections from one IP address; more: close 1008",
    integer(1, 2 ** 31 - 1),
    DEFAULTS.maxConnectionsPerIp,
  )
  .option(
    "--max-messages-per-second <n>",
    "messages one WebSocket connection may send per second (and in a burst); more: close 1008",
    integer(1, 2 ** 31 - 1),
    DEFAULTS.maxMessagesPerSecond,
  )
  .addOption(
    new Option("--slow-consumer <policy>", "skip: it misses messages while slow; close: WebSocket close 1013")
      .choices(["skip", "close"])
      .default(DEFAULTS.slowConsumer),
  )
  .parse()
  .opts<{
    host: string;
    port: number;
    tcpPort: number;
    maxFrameSize: number;
    maxChannelLength: number;
    highWaterMark: number;
    slowConsumer: SlowConsumerPolicy;
    maxChannelsPerConnection: number;
    maxConnectionsPerIp: number;
    maxMessagesPerSecond: number;
  }>();

try {
  const server = await startServer(options);
  console.log(`ws-channels: WebSocket listening on ${url("ws", server.ws)}`);
  console.log(`ws-channels: TCP broadcast listening on ${url("tcp", server.tcp)}`);
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return; // a second signal during shutdown changes nothing
    stopping = true;
    console.log(`ws-channels: ${signal}, closing connections`);
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error("ws-channels: shutdown failed:", error);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
} catch (error) {
  console.error(`ws-channels: cannot start: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
