import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP relay from an address a network namespace can reach (the cluster bridge's, on the host) to a service that
 * listens on the host's 127.0.0.1 only (the private stack's registry and ClickHouse, the LLM endpoints). A namespace
 * has a loopback of its own, and without iptables there is no NAT to reach the host's: relaying in the suite's
 * process needs nothing from the services (their bind address stays as it is) and nothing outside Node.
 * A relayed connection behaves like the service's: refused upstream means closed at once downstream.
 */
export class TcpRelay {
  private constructor(
    private readonly server: Server,
    private readonly sockets: Set<Socket>,
    readonly host: string,
    readonly port: number,
  ) {}

  static async start(listenHost: string, target: { host: string; port: number }): Promise<TcpRelay> {
    const sockets = new Set<Socket>();
    const server = createServer((down) => {
      const up = connect({ host: target.host, port: target.port });
      for (const s of [down, up]) {
        sockets.add(s);
        s.setNoDelay(true);
        s.once('close', () => sockets.delete(s));
        // Either side failing ends both: the other side sees the connection drop as it would with the service.
        s.once('error', () => {
          down.destroy();
          up.destroy();
        });
      }
      down.pipe(up);
      up.pipe(down);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, listenHost, () => resolve());
    });
    return new TcpRelay(server, sockets, listenHost, (server.address() as { port: number }).port);
  }

  /** `url` (an http://127.0.0.1:port… address of the target) as seen through the relay. */
  rewrite(url: string): string {
    const u = new URL(url);
    u.hostname = this.host;
    u.port = String(this.port);
    return u.toString().replace(/\/$/, url.endsWith('/') ? '/' : '');
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** Relays for each http://127.0.0.1:port URL; the same port is relayed once. */
export async function relayUrls(listenHost: string, urls: string[]): Promise<{ urls: string[]; relays: TcpRelay[] }> {
  const byPort = new Map<string, TcpRelay>();
  const out: string[] = [];
  try {
    for (const url of urls) {
      const u = new URL(url);
      let relay = byPort.get(u.host);
      if (!relay) byPort.set(u.host, (relay = await TcpRelay.start(listenHost, { host: u.hostname, port: Number(u.port) })));
      out.push(relay.rewrite(url));
    }
  } catch (err) {
    await Promise.allSettled([...byPort.values()].map((r) => r.close()));
    throw err;
  }
  return { urls: out, relays: [...byPort.values()] };
}
