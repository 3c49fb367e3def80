import { closeSync, ftruncateSync, mkdtempSync, openSync, readSync, rmdirSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where a spooled value lies: its segment, byte position and length. */
export interface SpoolRef {
  readonly segment: number;
  readonly position: number;
  readonly length: number;
}

interface Segment {
  fd: number;
  /** Positions of the values put and not yet taken or freed: a ref taken twice is refused, never misread. */
  live: Set<number>;
  bytes: number;
}

export interface DiskSpoolOptions {
  /** Folder the spool's files are made in (the system's temporary folder unless given). */
  dir?: string;
  /** A segment is closed for writing past this size and given back to the disk once none of its values is live. */
  segmentBytes?: number;
  /** A name in the files' names, to tell whose they are. */
  name?: string;
}

/**
 * Byte strings put aside on disk and each taken back once, for a stage that must hold more than its memory bound:
 * values go into append-only segment files, and a segment's space is given back when every value in it has been taken
 * or freed. Each file is unlinked as soon as it is opened (it lives as long as its descriptor), so a process killed
 * with SIGKILL leaves nothing behind. Synchronous, so a caller on the hot path (the hand-over's `open`) stays
 * synchronous; the page cache makes a put or a recent take a memory copy.
 */
export class DiskSpool {
  private readonly dir: string;
  private readonly segmentBytes: number;
  private readonly segments = new Map<number, Segment>();
  private current = -1;
  private closed = false;
  /** Bytes in segments still open, for logs and tests. */
  bytes = 0;
  puts = 0;
  takes = 0;

  constructor(opts: DiskSpoolOptions = {}) {
    this.segmentBytes = opts.segmentBytes ?? 64 * 1024 * 1024;
    this.dir = mkdtempSync(join(opts.dir ?? tmpdir(), `ipt-spool-${opts.name ?? 'values'}-`));
  }

  /** Values put and not yet taken or freed. */
  get live(): number {
    let n = 0;
    for (const s of this.segments.values()) n += s.live.size;
    return n;
  }

  /** Segment files on disk now. */
  get files(): number {
    return this.segments.size;
  }

  put(value: Uint8Array): SpoolRef {
    if (this.closed) throw new Error('the disk spool is closed');
    let seg = this.segments.get(this.current);
    if (!seg || seg.bytes >= this.segmentBytes) seg = this.openSegment();
    const position = seg.bytes;
    let written = 0;
    while (written < value.length) written += writeSync(seg.fd, value, written, value.length - written, position + written);
    seg.bytes += value.length;
    seg.live.add(position);
    this.bytes += value.length;
    this.puts++;
    return { segment: this.current, position, length: value.length };
  }

  /** The value put under ref, read back and let go (a ref is taken once). */
  take(ref: SpoolRef): Buffer {
    const seg = this.segments.get(ref.segment);
    if (!seg || !seg.live.has(ref.position)) throw new Error(`the disk spool has no value at segment ${ref.segment}, byte ${ref.position} (taken twice, or after close)`);
    const out = Buffer.allocUnsafe(ref.length);
    let read = 0;
    while (read < ref.length) {
      const n = readSync(seg.fd, out, read, ref.length - read, ref.position + read);
      if (n === 0) throw new Error(`the disk spool's segment ${ref.segment} ends before byte ${ref.position + ref.length}`);
      read += n;
    }
    this.takes++;
    this.release(ref.segment, seg, ref.position);
    return out;
  }

  /** Lets a value go without reading it. */
  free(ref: SpoolRef): void {
    const seg = this.segments.get(ref.segment);
    if (seg?.live.has(ref.position)) this.release(ref.segment, seg, ref.position);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.segments.values()) closeSync(s.fd);
    this.segments.clear();
    this.bytes = 0;
    try {
      rmdirSync(this.dir);
    } catch {
      // Already gone: nothing of ours is in it.
    }
  }

  private openSegment(): Segment {
    const path = join(this.dir, `${this.current + 1}.seg`);
    const fd = openSync(path, 'w+');
    unlinkSync(path);
    const seg: Segment = { fd, live: new Set(), bytes: 0 };
    this.segments.set(++this.current, seg);
    this.retire();
    return seg;
  }

  private release(index: number, seg: Segment, position: number): void {
    seg.live.delete(position);
    if (seg.live.size > 0) return;
    if (index !== this.current) this.drop(index, seg);
    else {
      // The segment being written holds nothing live: it starts again from its first byte.
      ftruncateSync(seg.fd, 0);
      this.bytes -= seg.bytes;
      seg.bytes = 0;
    }
  }

  /** Segments no longer written to and with nothing live go back to the disk. */
  private retire(): void {
    for (const [i, s] of this.segments) if (i !== this.current && s.live.size === 0) this.drop(i, s);
  }

  private drop(index: number, seg: Segment): void {
    closeSync(seg.fd);
    this.bytes -= seg.bytes;
    this.segments.delete(index);
  }
}
