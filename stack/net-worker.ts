// Placeholder: the pg_net worker (sends queued requests after commit) is being written.
export async function startNetWorker(_opts: { dbUrl: string }): Promise<{ stop: () => Promise<void> }> {
  return { stop: async () => {} };
}
