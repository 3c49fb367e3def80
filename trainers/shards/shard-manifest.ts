import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { TokenDtype } from './megatron-index.ts';

export const SHARD_FORMATS = ['megatron', 'parquet'] as const;
export type ShardFormat = (typeof SHARD_FORMATS)[number];
export const MANIFEST_FORMAT = 'instruct-pt.shard/1';

/**
 * What a shard holds and where it came from, written beside its files once they are complete (the manifest is the
 * shard's commit: files without one are left-overs of a crash). `offsets` are the token-topic records of the run the
 * shard holds; `resume` is where reading goes on for the next shard, so a stopped export continues exactly.
 */
export interface ShardManifest {
  format: typeof MANIFEST_FORMAT;
  runId: string;
  shard: number;
  topic: string;
  files: { format: ShardFormat; file: string; bytes: number; sha256: string }[];
  globalSteps: { first: number; last: number };
  batches: number;
  /** Rows: each a packed sequence of seqLen + 1 tokens, as in the batches (inputs [:-1], targets [1:]). */
  sequences: number;
  tokens: number;
  seqLen: number;
  batchSize: number;
  vocabSize: number;
  dtype: TokenDtype;
  /** New tokens per mix source (augmented, raw, general), summed over the shard's batches. */
  sources: Record<string, number>;
  offsets: { partition: number; first: string; last: string; batches: number }[];
  resume: { partition: number; offset: string }[];
  createdAt: string;
}

export const shardName = (n: number) => `shard-${String(n).padStart(5, '0')}`;
const MANIFEST = /^shard-(\d{5,})\.json$/;

/** Where an export of a run continues: the next shard's number and step, the read positions, the run's batch shape. */
export interface ShardResume {
  shard: number;
  nextStep: number;
  positions: Map<number, bigint>;
  last?: ShardManifest;
}

/** The run's manifests in shard order, each checked to be whole (its files there, of the size it says). */
export function readManifests(dir: string): ShardManifest[] {
  if (!existsSync(dir)) return [];
  const out: ShardManifest[] = [];
  for (const name of readdirSync(dir).filter((f) => MANIFEST.test(f)).sort()) {
    const path = join(dir, name);
    let m: ShardManifest;
    try {
      m = JSON.parse(readFileSync(path, 'utf8')) as ShardManifest;
    } catch (err) {
      throw new Error(`${path}: not a shard manifest (${(err as Error).message})`);
    }
    if (m.format !== MANIFEST_FORMAT) throw new Error(`${path}: format "${String(m.format)}", expected ${MANIFEST_FORMAT}`);
    for (const f of m.files) {
      const p = join(dir, f.file);
      if (!existsSync(p) || statSync(p).size !== f.bytes) throw new Error(`${path}: its file ${f.file} is missing or not ${f.bytes} bytes: the shard is damaged (remove this manifest and the later ones to write them again)`);
    }
    out.push(m);
  }
  out.forEach((m, i) => {
    if (m.shard !== i) throw new Error(`${dir}: shard ${i} is missing (found ${shardName(m.shard)}.json next)`);
    const prev = out[i - 1];
    if (prev && m.globalSteps.first !== prev.globalSteps.last + 1) throw new Error(`${dir}: ${shardName(m.shard)} starts at step ${m.globalSteps.first}, not ${prev.globalSteps.last + 1}`);
  });
  return out;
}

/** The resume point after the run's last whole shard; removes files no manifest owns (a crash's left-overs). */
export function resumePoint(dir: string): ShardResume {
  const manifests = readManifests(dir);
  const last = manifests.at(-1);
  if (existsSync(dir)) {
    const owned = new Set(manifests.flatMap((m) => [`${shardName(m.shard)}.json`, ...m.files.map((f) => f.file)]));
    for (const f of readdirSync(dir)) if (/^\.?shard-\d{5,}\./.test(f) && !owned.has(f)) rmSync(join(dir, f), { force: true });
  }
  return {
    shard: manifests.length,
    nextStep: last ? last.globalSteps.last + 1 : 0,
    positions: new Map((last?.resume ?? []).map((r) => [r.partition, BigInt(r.offset)])),
    last,
  };
}

/**
 * Takes the run's folder for this process (a `.lock` file holding its pid): two exports into one folder would write
 * the same shard numbers and remove each other's files in progress. A lock whose process is gone is taken over.
 * Returns the release.
 */
export function lockShardDir(dir: string): () => void {
  mkdirSync(dir, { recursive: true });
  const lock = join(dir, '.lock');
  for (let tries = 0; ; tries++) {
    try {
      const fd = openSync(lock, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(lock, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || tries > 0) throw err;
      const pid = Number(readFileSync(lock, 'utf8'));
      let alive = false;
      try {
        alive = Number.isInteger(pid) && pid > 0 && process.kill(pid, 0);
      } catch {
        alive = false;
      }
      if (alive) throw new Error(`${dir}: another export (pid ${pid}) is writing this run's shards`);
      rmSync(lock, { force: true });
    }
  }
}
