import { Channels } from "ws-channels";
import { conformance } from "./conformance.js";
import { createNode } from "./fixtures/node.mjs";

// One node, no broker: the single process the library always was.
conformance("no broker (one node)", async () => {
  const node = await createNode(new Channels(), undefined, ["m0", "m1"]);
  return { nodes: [{ call: (command) => node.handle(command) }], close: () => node.close() };
});
