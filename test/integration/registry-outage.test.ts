import { createServer, connect, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { AvroSerde, RegistryUnavailableError } from '../../processors/runtime/serde.ts';
import { loadSchema } from '../../processors/runtime/schemas.ts';
import { freePort } from '../fixtures/free-port.ts';
import { uniq } from './helpers.ts';

/**
 * A TCP relay in front of the stack's real registry: closing it makes the registry unreachable (connections
 * refused) without touching the registry the other tests share.
 */
class Relay {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  constructor(
    readonly port: number,
    private readonly target: URL,
  ) {}
  async open(): Promise<void> {
    this.server = createServer((client) => {
      const upstream = connect(Number(this.target.port), this.target.hostname);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((r) => this.server!.listen(this.port, '127.0.0.1', r));
  }
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    this.server = undefined;
  }
}

const relays: Relay[] = [];
afterEach(async () => {
  while (relays.length) await relays.pop()!.close();
});

async function relay(): Promise<Relay> {
  const r = new Relay(await freePort(), new URL(inject('stack').registryUrl));
  await r.open();
  relays.push(r);
  return r;
}

function capture() {
  const lines: string[] = [];
  return { lines, logger: { warn: (_: object, m: string) => void lines.push(`warn: ${m}`), info: (_: object, m: string) => void lines.push(`info: ${m}`) } };
}

describe('schema registry outage', () => {
  it('a record whose schema is not cached waits for the registry instead of failing to decode', async () => {
    const topic = uniq('it.registry');
    const direct = new AvroSerde(inject('stack').registryUrl);
    await direct.registerValueSchema(topic, 'raw-text');
    const value = { id: 'a', runId: 'r', text: 'hello', source: 's', ingestedAt: 1, seq: 0, round: 0, convert: true };
    const record = direct.encode(topic, loadSchema('raw-text'), value);

    const r = await relay();
    const log = capture();
    const serde = new AvroSerde(`http://127.0.0.1:${r.port}`, { outageMs: 30_000, logger: log.logger });
    await r.close();
    const started = Date.now();
    const waiting = serde.prefetch([record]);
    await sleep(2000);
    await r.open();
    await waiting;
    expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
    expect(serde.decode(record, loadSchema('raw-text'))).toEqual(value);
    expect(log.lines).toEqual([expect.stringMatching(/^warn: schema registry unavailable: waiting up to 30000 ms \(IPT_REGISTRY_OUTAGE_MS\)/), 'info: schema registry answers again']);
  });

  it('registration waits for the registry too, and an outage past the budget fails naming the registry and the variable', async () => {
    const r = await relay();
    const serde = new AvroSerde(`http://127.0.0.1:${r.port}`, { outageMs: 20_000, logger: capture().logger });
    await r.close();
    const registering = serde.registerValueSchema(uniq('it.registry'), 'raw-text');
    await sleep(1500);
    await r.open();
    expect(await registering).toBeGreaterThan(0);

    await r.close();
    const impatient = new AvroSerde(`http://127.0.0.1:${r.port}`, { outageMs: 600, logger: capture().logger });
    const unknown = Buffer.from([0, 0, 0, 0x7f, 0x7f, 2]);
    const err = await impatient.prefetch([unknown]).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryUnavailableError);
    expect((err as Error).message).toMatch(new RegExp(`reading schema id \\d+: the schema registry at http://127.0.0.1:${r.port} did not answer within 600 ms \\(IPT_REGISTRY_OUTAGE_MS\\)`));
  });

  it('an id the registry does not know is left to decode, which names it (the record is dead-lettered, not waited for)', async () => {
    const serde = new AvroSerde(inject('stack').registryUrl, { outageMs: 600, logger: capture().logger });
    const unknown = Buffer.from([0, 0x7f, 0xff, 0xff, 0xf0, 2]);
    await serde.prefetch([unknown]);
    expect(() => serde.decode(unknown, loadSchema('raw-text'))).toThrow(/unknown schema id 2147483632/);
  });
});
