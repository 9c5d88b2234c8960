/* uWebSockets.js pub/sub: every connection subscribes to "bench"; a message is published to it. */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { runPeer, Skip } from "./harness.js";

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
  app.ws("/*", {
    compression: uws.DISABLED,
    idleTimeout: 0, // never close an idle client during a long connect phase
    sendPingsAutomatically: false,
    maxBackpressure: 64 * 1024 * 1024, // per socket; far above what a window of messages needs, so publish drops nothing
    open: (ws) => void ws.subscribe("bench"),
    message: (_ws, message) => void app.publish("bench", message, false),
  });
  const port = await new Promise<number>((resolve, reject) =>
    app.listen("127.0.0.1", 0, (token) => (token ? resolve(uws.us_socket_local_port(token)) : reject(new Error("uWS cannot listen")))),
  );
  return { port, members: () => app.numSubscribers("bench") };
});
