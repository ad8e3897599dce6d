/**
 * Reading fragmented MP4 (ISO BMFF) just enough to deliver it: top-level boxes, the init segment
 * (ftyp + moov), fragments (moof + mdat) with their sample count and whether they start with a
 * keyframe, and the RFC 6381 codec string MSE needs (`avc1.64001f`).
 */
import { Transform, type TransformCallback } from 'node:stream';

export interface Mp4Box {
  type: string;
  /** Offset of the box header in the buffer. */
  start: number;
  /** Whole box, header included. */
  size: number;
  headerSize: number;
}

/**
 * The complete boxes in buf[start, end), one level. `complete` is false when the bytes end inside
 * a box (a file still being written or cut by a crash); `next` is where that box starts.
 */
export function readBoxes(buf: Uint8Array, start = 0, end = buf.length): { boxes: Mp4Box[]; next: number; complete: boolean } {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const boxes: Mp4Box[] = [];
  let at = start;
  while (at + 8 <= end) {
    let size = view.getUint32(at);
    const type = String.fromCharCode(buf[at + 4], buf[at + 5], buf[at + 6], buf[at + 7]);
    let headerSize = 8;
    if (size === 1) {
      if (at + 16 > end) break;
      size = Number(view.getBigUint64(at + 8));
      headerSize = 16;
    } else if (size === 0) {
      size = end - at; // "to the end of the file"
    }
    if (size < headerSize) return { boxes, next: at, complete: false }; // corrupt: stop here
    if (at + size > end) break;
    boxes.push({ type, start: at, size, headerSize });
    at += size;
  }
  return { boxes, next: at, complete: at === end };
}

function child(buf: Uint8Array, parent: Mp4Box, type: string): Mp4Box | undefined {
  return readBoxes(buf, parent.start + parent.headerSize, parent.start + parent.size).boxes.find((b) => b.type === type);
}

function children(buf: Uint8Array, parent: Mp4Box, type: string): Mp4Box[] {
  return readBoxes(buf, parent.start + parent.headerSize, parent.start + parent.size).boxes.filter((b) => b.type === type);
}

/** ISO/IEC 14496-12 sample flags: sample_is_non_sync_sample. */
const NON_SYNC = 0x00010000;

export interface FragmentInfo {
  /** Samples (frames) in the fragment, over all its tracks. */
  samples: number;
  /** The fragment's first sample is a sync sample (a keyframe): a decoder can start here. */
  keyframe: boolean;
}

/** Sample count and keyframe flag of one `moof` box. */
export function readFragmentInfo(buf: Uint8Array, moof: Mp4Box): FragmentInfo {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let samples = 0;
  let keyframe: boolean | undefined;
  for (const traf of children(buf, moof, 'traf')) {
    let defaultFlags: number | undefined;
    const tfhd = child(buf, traf, 'tfhd');
    if (tfhd) {
      const flags = view.getUint32(tfhd.start + 8) & 0xffffff;
      let at = tfhd.start + 16; // after version/flags and track_ID
      if (flags & 0x01) at += 8; // base_data_offset
      if (flags & 0x02) at += 4; // sample_description_index
      if (flags & 0x08) at += 4; // default_sample_duration
      if (flags & 0x10) at += 4; // default_sample_size
      if (flags & 0x20) defaultFlags = view.getUint32(at);
    }
    for (const trun of children(buf, traf, 'trun')) {
      const flags = view.getUint32(trun.start + 8) & 0xffffff;
      const count = view.getUint32(trun.start + 12);
      let at = trun.start + 16;
      if (flags & 0x01) at += 4; // data_offset
      let firstFlags: number | undefined;
      if (flags & 0x04) {
        firstFlags = view.getUint32(at);
        at += 4;
      } else if (flags & 0x400 && count > 0) {
        if (flags & 0x100) at += 4; // sample_duration
        if (flags & 0x200) at += 4; // sample_size
        firstFlags = view.getUint32(at);
      }
      if (keyframe === undefined && count > 0) {
        const f = firstFlags ?? defaultFlags;
        keyframe = f === undefined ? false : (f & NON_SYNC) === 0;
      }
      samples += count;
    }
  }
  return { samples, keyframe: keyframe ?? false };
}

export interface Fmp4Layout {
  /** ftyp + moov, if present. */
  init: { start: number; end: number } | undefined;
  /** Complete moof + mdat pairs, in order. */
  fragments: Array<FragmentInfo & { start: number; end: number }>;
  /** Samples in the complete fragments. */
  samples: number;
  /** The file ends inside a box (cut short). */
  truncated: boolean;
  /** Top-level box types in order (for diagnostics and tests). */
  types: string[];
}

/** The layout of a whole fragmented MP4 file (or of what a crash left of it). */
export function readFmp4Layout(buf: Uint8Array): Fmp4Layout {
  const { boxes, complete } = readBoxes(buf);
  const ftyp = boxes.find((b) => b.type === 'ftyp');
  const moov = boxes.find((b) => b.type === 'moov');
  const fragments: Fmp4Layout['fragments'] = [];
  for (let i = 0; i < boxes.length; i++) {
    const moof = boxes[i];
    const mdat = boxes[i + 1];
    if (moof.type !== 'moof' || mdat?.type !== 'mdat') continue;
    fragments.push({ ...readFragmentInfo(buf, moof), start: moof.start, end: mdat.start + mdat.size });
  }
  return {
    init: ftyp && moov ? { start: ftyp.start, end: moov.start + moov.size } : undefined,
    fragments,
    samples: fragments.reduce((n, f) => n + f.samples, 0),
    truncated: !complete,
    types: boxes.map((b) => b.type),
  };
}

/**
 * RFC 6381 codec string of the first H.264 track of an init segment, e.g. `avc1.64001f`
 * (profile, constraint flags, level from the avcC box), or undefined if there is none.
 */
export function avcCodecString(init: Uint8Array): string | undefined {
  const moov = readBoxes(init).boxes.find((b) => b.type === 'moov');
  if (!moov) return undefined;
  for (const trak of children(init, moov, 'trak')) {
    const mdia = child(init, trak, 'mdia');
    const minf = mdia && child(init, mdia, 'minf');
    const stbl = minf && child(init, minf, 'stbl');
    const stsd = stbl && child(init, stbl, 'stsd');
    if (!stsd) continue;
    // stsd: full box header (4) + entry_count (4), then sample entries.
    const entries = readBoxes(init, stsd.start + stsd.headerSize + 8, stsd.start + stsd.size).boxes;
    const avc1 = entries.find((b) => b.type === 'avc1' || b.type === 'avc3');
    if (!avc1) continue;
    // VisualSampleEntry: 78 bytes of fixed fields before its child boxes.
    const avcC = readBoxes(init, avc1.start + avc1.headerSize + 78, avc1.start + avc1.size).boxes.find((b) => b.type === 'avcC');
    if (!avcC) continue;
    const p = avcC.start + avcC.headerSize;
    const hex = (n: number) => n.toString(16).padStart(2, '0');
    return `${avc1.type}.${hex(init[p + 1])}${hex(init[p + 2])}${hex(init[p + 3])}`;
  }
  return undefined;
}

export type Fmp4Segment =
  | { kind: 'init'; data: Buffer; codec: string | undefined }
  | { kind: 'fragment'; data: Buffer; keyframe: boolean; samples: number };

/**
 * Cuts a fragmented-MP4 byte stream into whole segments (object mode output): first the init
 * segment (everything up to and including moov), then one segment per moof + mdat (boxes between
 * fragments, e.g. styp / sidx / prft, travel with the next fragment). The trailing mfra of a
 * finished stream is dropped: a live viewer has no use for it.
 */
export class Fmp4Segmenter extends Transform {
  private pending: Buffer = Buffer.alloc(0);
  private initSent = false;
  private held: Buffer[] = [];

  constructor() {
    super({ readableObjectMode: true });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const { boxes, next } = readBoxes(this.pending);
    for (const box of boxes) {
      const bytes = this.pending.subarray(box.start, box.start + box.size);
      this.held.push(bytes);
      if (!this.initSent && box.type === 'moov') {
        const data = Buffer.concat(this.held);
        this.held = [];
        this.initSent = true;
        this.push({ kind: 'init', data, codec: avcCodecString(data) } satisfies Fmp4Segment);
      } else if (this.initSent && box.type === 'mdat') {
        const data = Buffer.concat(this.held);
        this.held = [];
        const moof = readBoxes(data).boxes.find((b) => b.type === 'moof');
        const info = moof ? readFragmentInfo(data, moof) : { samples: 0, keyframe: false };
        this.push({ kind: 'fragment', data, ...info } satisfies Fmp4Segment);
      } else if (box.type === 'mfra') {
        this.held.pop();
      }
    }
    // Copy the unfinished tail so the consumed chunk can be freed.
    this.pending = Buffer.from(this.pending.subarray(next));
    callback();
  }
}
