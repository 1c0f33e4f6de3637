/**
 * A loopback TCP proxy the test controls: forward to a real server, then cut every
 * connection and refuse new ones, then accept again. Used to take a real database "down"
 * without touching the shared server.
 */
export type TcpProxy = {
  port: number;
  /** Closes open connections and stops listening (new connections are refused). */
  down(): Promise<void>;
  /** Listens again on the same port. */
  up(): void;
  close(): Promise<void>;
};

export function startTcpProxy(target: { hostname: string; port: number }): TcpProxy {
  let listener: Deno.Listener | undefined;
  const open = new Set<Deno.Conn>();
  let port = 0;

  function pipe(from: Deno.Conn, to: Deno.Conn) {
    from.readable.pipeTo(to.writable).catch(() => {}).finally(() => {
      try {
        to.close();
      } catch { /* already closed */ }
    });
  }

  async function serve(current: Deno.Listener) {
    for await (const client of current) {
      try {
        const upstream = await Deno.connect(target);
        open.add(client);
        open.add(upstream);
        pipe(client, upstream);
        pipe(upstream, client);
      } catch {
        client.close();
      }
    }
  }

  function up() {
    listener = Deno.listen({ hostname: "127.0.0.1", port });
    port = (listener.addr as Deno.NetAddr).port;
    serve(listener).catch(() => {});
  }

  async function down() {
    listener?.close();
    listener = undefined;
    for (const conn of open) {
      try {
        conn.close();
      } catch { /* already closed */ }
    }
    open.clear();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }

  up();
  return { port, down, up, close: down };
}
