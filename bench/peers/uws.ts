/* uWebSockets.js pub/sub: every connection subscribes to its room; a message is published to it. */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { roleOf, roomMessage, runPeer, Skip } from "./harness.js";

type UWS = typeof import("@trufflesuite/uws-js-unofficial");

/**
 * Loads the native addon itself: the package's entry silently falls back to a JavaScript
 * implementation when the binary does not load, and that is not what this row should measure.
 */
function loadNative(): UWS {
  const require = createRequire(import.meta.url);
  const binary = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
  try {
    const root = dirname(require.resolve("@trufflesuite/uws-js-unofficial/package.json"));
    return require(join(root, "binaries", binary)) as UWS;
  } catch (error) {
    throw new Skip(`native ${binary} does not load: ${(error as Error).message.split("\n")[0]}`);
  }
}

runPeer(async () => {
  const uws = loadNative();
  const app = uws.App();
  const rooms = new Set<string>();
  app.ws<{ room: string | undefined }>("/*", {
    compression: uws.DISABLED,
    idleTimeout: 0, // never close an idle client during a long connect phase
    sendPingsAutomatically: false,
    maxBackpressure: 64 * 1024 * 1024, // per socket; far above what a window of messages needs, so publish drops nothing
    upgrade: (res, req, context) => {
      const query = req.getQuery();
      res.upgrade(
        { room: roleOf(query ? `/?${query}` : "/").room },
        req.getHeader("sec-websocket-key"),
        req.getHeader("sec-websocket-protocol"),
        req.getHeader("sec-websocket-extensions"),
        context,
      );
    },
    open: (ws) => {
      const { room } = ws.getUserData();
      if (room === undefined) return; // the control connection
      rooms.add(room);
      ws.subscribe(room);
    },
    message: (ws, message) => {
      const { room } = ws.getUserData();
      if (room !== undefined) return void app.publish(room, message, false);
      const trigger = Buffer.from(message).toString();
      for (const name of rooms) app.publish(name, roomMessage(trigger, name), false);
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    app.listen("127.0.0.1", 0, (token) => (token ? resolve(uws.us_socket_local_port(token)) : reject(new Error("uWS cannot listen")))),
  );
  return { port, members: () => [...rooms].reduce((sum, room) => sum + app.numSubscribers(room), 0) };
});
