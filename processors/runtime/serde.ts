import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import avro from 'avsc';
import { loadSchema, valueSubject, type LoadedSchema } from './schemas.ts';
import { backoffDelay } from './backoff.ts';
import { setting } from './settings.ts';
import { createLogger, type NoticeLogger } from './logger.ts';
import { basicAuthHeader, registryCredentials } from './service-credentials.ts';

/** How long a schema look-up or registration waits for an unreachable registry (IPT_REGISTRY_OUTAGE_MS). */
export const registryOutageMs = (env: NodeJS.ProcessEnv = process.env): number => setting('IPT_REGISTRY_OUTAGE_MS', env);

/**
 * Whether asking the registry again may succeed: it did not answer (the client reports a refused connection as
 * status 400 with the socket error in its message), or answered 5xx, 408 or 429. A 404 or a 409 is its answer.
 */
export function registryUnavailable(err: unknown): boolean {
  const e = err as { status?: number; message?: string; name?: string };
  if (e.status === undefined) return true;
  if (e.status === 400) return /ECONN|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|EPIPE|socket hang up|timeout/i.test(e.message ?? '');
  return e.status >= 500 || e.status === 408 || e.status === 429;
}

export class IncompatibleSchemaError extends Error {}
export class DecodeError extends Error {}
/** The registry did not answer within the outage budget. */
export class RegistryUnavailableError extends Error {}

const MAGIC = 0;
const SLAB_BYTES = 64 * 1024;
const ZERO = Buffer.from([0]);

/**
 * Avro values in the Confluent wire format (magic byte, 4-byte schema id, Avro body). Registration and schema
 * look-ups go through the registry client; the per-record work is synchronous avsc calls with the writer→reader
 * resolver cached per schema id, so decoding stays off the network and off the event loop's async queue.
 */
export class AvroSerde {
  readonly registry: SchemaRegistry;
  private readonly writerIds = new Map<string, number>();
  private readonly resolvers = new Map<string, avro.Resolver | 'same'>();
  private readonly writerTypes = new Map<number, avro.Type>();
  private readonly outageMs: number;
  private readonly logger: NoticeLogger;
  private readonly authHeaders: Record<string, string>;
  /** When the registry stopped answering, while it does not. */
  private downSince: number | undefined;

  constructor(
    readonly registryUrl: string,
    opts: { outageMs?: number; logger?: NoticeLogger } = {},
  ) {
    const credentials = registryCredentials();
    this.authHeaders = credentials ? { Authorization: basicAuthHeader(credentials) } : {};
    this.registry = new SchemaRegistry({ host: registryUrl, clientId: 'instruct-pt', ...(credentials ? { auth: { username: credentials.username, password: credentials.password } } : {}) });
    this.outageMs = opts.outageMs ?? registryOutageMs();
    this.logger = opts.logger ?? createLogger('instruct-pt').child({ component: 'schema-registry' });
  }

  /**
   * Calls the registry, waiting through an outage (capped, jittered backoff) up to the outage budget: schemas
   * already cached keep records flowing meanwhile, and a record whose schema is not cached waits rather than being
   * dead-lettered as undecodable. One warning when the registry stops answering, one line when it is back.
   */
  private async whileUnavailable<T>(what: string, call: () => Promise<T>): Promise<T> {
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      try {
        const v = await call();
        if (this.downSince !== undefined) {
          this.logger.info({ registry: this.registryUrl, seconds: (Date.now() - this.downSince) / 1000 }, 'schema registry answers again');
          this.downSince = undefined;
        }
        return v;
      } catch (err) {
        if (!registryUnavailable(err)) throw err;
        if (this.downSince === undefined) {
          this.downSince = Date.now();
          this.logger.warn({ registry: this.registryUrl, err: (err as Error).message }, `schema registry unavailable: waiting up to ${this.outageMs} ms (IPT_REGISTRY_OUTAGE_MS)`);
        }
        const wait = backoffDelay(attempt, { baseMs: 200, capMs: 5_000 });
        if (Date.now() + wait - started > this.outageMs) {
          throw new RegistryUnavailableError(`${what}: the schema registry at ${this.registryUrl} did not answer within ${this.outageMs} ms (IPT_REGISTRY_OUTAGE_MS): ${(err as Error).message}`);
        }
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  /** Registers schemas/<schemaName>.avsc under topic's value subject with BACKWARD compatibility; returns its id. */
  async registerValueSchema(topic: string, schemaName: string): Promise<number> {
    const schema = loadSchema(schemaName);
    const subject = valueSubject(topic);
    await this.whileUnavailable(`setting compatibility on "${subject}"`, () => this.setCompatibility(subject, 'BACKWARD'));
    let id: number;
    try {
      ({ id } = await this.whileUnavailable(`registering ${schema.file} under "${subject}"`, () => this.registry.register({ type: SchemaType.AVRO, schema: schema.text }, { subject })));
    } catch (err) {
      const e = err as { status?: number; message: string };
      if (e.status === 409 || /incompatible/i.test(e.message)) {
        throw new IncompatibleSchemaError(
          `schema ${schema.file} is incompatible with the latest version registered under subject "${subject}" (BACKWARD): ${e.message}. ` +
            'Add defaults to new fields, or write to a new topic.',
        );
      }
      throw new Error(`registering ${schema.file} under "${subject}" at ${this.registryUrl} failed: ${e.message}`);
    }
    this.writerIds.set(topic, id);
    this.writerTypes.set(id, schema.type);
    return id;
  }

  private async setCompatibility(subject: string, level: 'BACKWARD'): Promise<void> {
    const res = await fetch(`${this.registryUrl}/config/${encodeURIComponent(subject)}`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/vnd.schemaregistry.v1+json', ...this.authHeaders },
      body: JSON.stringify({ compatibility: level }),
    });
    if (!res.ok) throw Object.assign(new Error(`setting ${level} compatibility on "${subject}" failed: HTTP ${res.status} ${await res.text()}`), { status: res.status });
  }

  // Values are encoded straight into a shared slab and handed out as views of it: no copy per record. A view keeps
  // its slab alive only until the record is sent; a value too big for a slab gets one of its own size.
  private slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
  private slabAt = 0;

  /** Encodes with the schema registered for topic (registerValueSchema must have run for it). */
  encode(topic: string, schema: LoadedSchema, value: unknown): Buffer {
    const id = this.writerIds.get(topic);
    if (id === undefined) throw new Error(`no schema registered for topic ${topic}`);
    const out = this.encodeInSlab(schema.type, value, 5);
    out[0] = MAGIC;
    out.writeUInt32BE(id, 1);
    return out;
  }

  /** The Avro body of one value (no wire-format header): an item of a batched record (see encodeBatch). */
  encodeItem(type: avro.Type, value: unknown): Buffer {
    return this.encodeInSlab(type, value, 0);
  }

  /** Writes value's Avro body after `head` reserved bytes at the slab's free end; returns the view of both. */
  private encodeInSlab(type: avro.Type, value: unknown, head: number): Buffer {
    for (;;) {
      const start = this.slabAt;
      const body = start + head;
      // avsc returns minus the missing byte count when the buffer is too small.
      const end = body < this.slab.length ? type.encode(value, this.slab, body) : -1;
      if (end >= 0) {
        this.slabAt = end;
        return this.slab.subarray(start, end);
      }
      const size = this.slab.length - body - end;
      this.slab = Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, head + size));
      this.slabAt = 0;
    }
  }

  /**
   * A batched record in the wire format from its items' bodies (encodeItem). Its schema is a record whose only field
   * is an array of the items, so the Avro body is that array: one block (item count as a zig-zag varint, then the
   * items) and the closing zero count.
   */
  encodeBatch(topic: string, items: readonly Buffer[]): Buffer {
    const id = this.writerIds.get(topic);
    if (id === undefined) throw new Error(`no schema registered for topic ${topic}`);
    const head = Buffer.allocUnsafe(5 + 10);
    head[0] = MAGIC;
    head.writeUInt32BE(id, 1);
    let end = 5;
    // Zig-zag of a non-negative n is 2n; then 7 bits per byte, low bits first.
    let n = items.length * 2;
    while (n >= 0x80) {
      head[end++] = (n & 0x7f) | 0x80;
      n = Math.floor(n / 128);
    }
    head[end++] = n;
    // An empty array is the closing zero alone.
    return items.length === 0 ? Buffer.from(head.subarray(0, end)) : Buffer.concat([head.subarray(0, end), ...items, ZERO]);
  }

  /**
   * Fetches and caches the writer schemas of the ids found in buffers, so decode() can stay synchronous. An id the
   * registry does not know is left for decode() to report per record; an unreachable registry is waited for.
   */
  async prefetch(buffers: Iterable<Buffer | null>): Promise<void> {
    for (const b of buffers) {
      if (!b || b.length < 5 || b[0] !== MAGIC) continue;
      const id = b.readUInt32BE(1);
      if (this.writerTypes.has(id) || this.unknownIds.has(id)) continue;
      let writer: avro.Type;
      try {
        writer = (await this.whileUnavailable(`reading schema id ${id}`, () => this.registry.getSchema(id))) as unknown as avro.Type;
      } catch (err) {
        if (err instanceof RegistryUnavailableError) throw err;
        // The registry's answer: no such schema. decode() reports it per record; not asked again for this batch.
        this.unknownIds.add(id);
        continue;
      }
      this.writerTypes.set(id, avro.Type.forSchema(JSON.parse(JSON.stringify(writer.schema()))));
    }
    this.unknownIds.clear();
  }

  private readonly unknownIds = new Set<number>();

  decode(buf: Buffer | null, reader: LoadedSchema): unknown {
    if (!buf) throw new DecodeError('record has no value (tombstone)');
    if (buf.length < 5 || buf[0] !== MAGIC) throw new DecodeError('value is not in the schema-registry wire format (magic byte 0 + schema id)');
    const id = buf.readUInt32BE(1);
    const writer = this.writerTypes.get(id);
    if (!writer) throw new DecodeError(`unknown schema id ${id}`);
    const key = `${id}:${reader.file}`;
    let resolver = this.resolvers.get(key);
    if (resolver === undefined) {
      try {
        resolver = writer.equals(reader.type) ? 'same' : reader.type.createResolver(writer);
      } catch (err) {
        throw new DecodeError(`schema id ${id} cannot be read as ${reader.file}: ${(err as Error).message}`);
      }
      this.resolvers.set(key, resolver);
    }
    let decoded: { value: unknown; offset: number };
    try {
      decoded = resolver === 'same' ? reader.type.decode(buf, 5) : reader.type.decode(buf, 5, resolver);
    } catch (err) {
      throw new DecodeError(`Avro body does not decode with schema id ${id}: ${(err as Error).message}`);
    }
    if (decoded.offset !== buf.length) {
      throw new DecodeError(`Avro body does not decode with schema id ${id}: ${decoded.offset < 0 ? 'truncated' : `${buf.length - decoded.offset} trailing bytes`}`);
    }
    // Invalid UTF-8 in a string (or a lone surrogate, as avsc writes it) decodes to U+FFFD, indistinguishable from a
    // text that holds U+FFFD unless the bytes are counted: more replacement characters than encoded ones means bytes
    // that were not UTF-8. Texts without U+FFFD (nearly all) pay one native search per string.
    const replaced = replacementCounter(reader.type)(decoded.value);
    if (replaced > 0 && replaced > countEncodedReplacements(buf)) {
      throw new DecodeError(`Avro body with schema id ${id}: a string is not valid UTF-8 (invalid bytes or a lone surrogate)`);
    }
    return decoded.value;
  }
}

const REPLACEMENT = '\uFFFD';
const REPLACEMENT_UTF8 = Buffer.from(REPLACEMENT, 'utf8');

type Counter = (v: unknown) => number;

const counters = new WeakMap<avro.Type, Counter>();
// Types whose values hold no decoded text (enum symbols come from the schema; bytes are not text).
const NO_TEXT = new Set(['null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'fixed', 'enum']);
const none: Counter = () => 0;

function inString(v: unknown): number {
  if (typeof v !== 'string') return 0;
  let n = 0;
  for (let i = v.indexOf(REPLACEMENT); i >= 0; i = v.indexOf(REPLACEMENT, i + 1)) n++;
  return n;
}

/**
 * U+FFFD characters in every string of a value decoded with this type, by a function built once per type that visits
 * only the fields that can hold strings (a record of numbers costs nothing); a union's value is walked generically.
 */
function replacementCounter(type: avro.Type): Counter {
  let c = counters.get(type);
  if (c) return c;
  const t = type as avro.Type & { typeName: string; fields?: { name: string; type: avro.Type }[]; itemsType?: avro.Type; valuesType?: avro.Type };
  if (t.typeName === 'string') c = inString;
  else if (t.fields) {
    // A record that holds itself (directly or not) finds this forward while its fields are built.
    let built: Counter = none;
    counters.set(type, (v) => built(v));
    const parts = t.fields.map((f) => [f.name, replacementCounter(f.type)] as const).filter(([, fc]) => fc !== none);
    c = built =
      parts.length === 0
        ? none
        : (v) => {
            let n = 0;
            for (const [name, fc] of parts) n += fc((v as Record<string, unknown>)[name]);
            return n;
          };
  } else if (t.itemsType) {
    const ic = replacementCounter(t.itemsType);
    c = ic === none ? none : (v) => (v as unknown[]).reduce<number>((n, x) => n + ic(x), 0);
  } else if (t.valuesType) {
    const vc = replacementCounter(t.valuesType);
    c = vc === none ? none : (v) => Object.values(v as Record<string, unknown>).reduce<number>((n, x) => n + vc(x), 0);
  } else if (NO_TEXT.has(t.typeName)) c = none;
  // A union (its branch is known only from its value), or any other type: walked generically.
  else c = replacementChars;
  counters.set(type, c);
  return c;
}

/** U+FFFD characters in every string of a decoded value, whatever its shape. */
function replacementChars(v: unknown): number {
  if (typeof v === 'string') return inString(v);
  if (v === null || typeof v !== 'object' || Buffer.isBuffer(v)) return 0;
  let n = 0;
  if (Array.isArray(v)) for (const x of v) n += replacementChars(x);
  else for (const k in v) n += replacementChars((v as Record<string, unknown>)[k]);
  return n;
}

function countEncodedReplacements(buf: Buffer): number {
  let n = 0;
  for (let i = buf.indexOf(REPLACEMENT_UTF8, 5); i >= 0; i = buf.indexOf(REPLACEMENT_UTF8, i + 3)) n++;
  return n;
}
