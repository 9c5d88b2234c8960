/**
 * What the server's `Channels` keeps per membership: the connection's id (verified, or its
 * `?id=`), if any; for a WebSocket membership, its presence `ref` (unique across nodes, never
 * reused) and the token's `info` claim, if any. The TCP port's members keep nothing.
 */
export type ClientMeta = { id: string | undefined; ref?: string; info?: Readonly<Record<string, unknown>> } | undefined;
