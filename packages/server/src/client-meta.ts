/** What the server's `Channels` keeps per membership: the connection's id (verified, or its `?id=`), if any. */
export type ClientMeta = { id: string | undefined } | undefined;
