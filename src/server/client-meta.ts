/** What the server's `Channels` keeps per membership: the connection's `?id=`, if it gave one. */
export type ClientMeta = { id: string | undefined } | undefined;
