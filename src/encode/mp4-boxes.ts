/**
 * The project's one ISO-BMFF (MP4) box reader, just enough for fragmented MP4: walk boxes, count a
 * moof's samples and tell whether its first is a sync sample (keyframe), read the codec string from
 * an init segment, and lay out a whole file (or what a crash left of it). The live splitter
 * (src/serve/fmp4-splitter.ts), the file writer's frame count and the tests all read boxes here.
 * Reference: ISO/IEC 14496-12 (boxes, sample flags), 14496-15 (avcC).
 */

export interface Box {
  type: string;
  /** Offset of the box's first byte (its size field) in the buffer walked. */
  start: number;
  /** Offset of the first byte of the payload (after size, type and any 64-bit size). */
  payload: number;
  /** Offset one past the box's last byte. */
  end: number;
}

function typeAt(buf: Uint8Array, offset: number): string {
  return String.fromCharCode(buf[offset], buf[offset + 1], buf[offset + 2], buf[offset + 3]);
}

function u32(buf: Uint8Array, offset: number): number {
  return ((buf[offset] << 24) >>> 0) + (buf[offset + 1] << 16) + (buf[offset + 2] << 8) + buf[offset + 3];
}

/**
 * Reads the header of the box at `offset`. Returns null when fewer bytes than the header are
 * available. `end` may lie beyond `buf.length` (the box is not complete yet). A size of 0 ("to the
 * end of the file") cannot be delimited in a live stream and is reported as end = Infinity.
 */
export function readBoxHeader(buf: Uint8Array, offset: number): Box | null {
  if (buf.length - offset < 8) return null;
  const size32 = u32(buf, offset);
  const type = typeAt(buf, offset + 4);
  if (size32 === 1) {
    if (buf.length - offset < 16) return null;
    const hi = u32(buf, offset + 8);
    const lo = u32(buf, offset + 12);
    const size = hi * 2 ** 32 + lo;
    return { type, start: offset, payload: offset + 16, end: offset + size };
  }
  if (size32 === 0) return { type, start: offset, payload: offset + 8, end: Infinity };
  return { type, start: offset, payload: offset + 8, end: offset + size32 };
}

/** The complete child boxes in [from, to) of a buffer; stops at the first malformed one. */
export function childBoxes(buf: Uint8Array, from: number, to: number): Box[] {
  const out: Box[] = [];
  let at = from;
  while (at < to) {
    const box = readBoxHeader(buf.subarray(0, to), at);
    if (!box || box.end > to || box.end - box.start < 8) break;
    out.push(box);
    at = box.end;
  }
  return out;
}

function findPath(buf: Uint8Array, from: number, to: number, path: readonly string[]): Box | undefined {
  let box: Box | undefined;
  let lo = from;
  let hi = to;
  for (const type of path) {
    box = childBoxes(buf, lo, hi).find((b) => b.type === type);
    if (!box) return undefined;
    lo = box.payload;
    hi = box.end;
  }
  return box;
}

/** sample_is_non_sync_sample (bit 16) and sample_depends_on (bits 24-25) of the 32-bit sample flags. */
export function isSyncSampleFlags(flags: number): boolean {
  const nonSync = (flags >>> 16) & 1;
  const dependsOn = (flags >>> 24) & 3;
  return nonSync === 0 && dependsOn !== 1;
}

export interface FragmentInfo {
  /** Samples across the fragment's track runs. */
  samples: number;
  /** Whether the first sample is a sync sample; null when no flags could be found. */
  startsWithKeyframe: boolean | null;
  /** tfdt baseMediaDecodeTime of the first traf, in the track's timescale; null without tfdt. */
  baseDecodeTime: number | null;
}

/** Per-track defaults from the init segment's moov/mvex/trex boxes: track id -> default_sample_flags. */
export function trexDefaultFlags(init: Uint8Array): Map<number, number> {
  const out = new Map<number, number>();
  const moov = childBoxes(init, 0, init.length).find((b) => b.type === 'moov');
  if (!moov) return out;
  const mvex = childBoxes(init, moov.payload, moov.end).find((b) => b.type === 'mvex');
  if (!mvex) return out;
  for (const trex of childBoxes(init, mvex.payload, mvex.end)) {
    if (trex.type !== 'trex' || trex.end - trex.payload < 24) continue;
    // version/flags(4) track_ID(4) default_sample_description_index(4) duration(4) size(4) flags(4)
    out.set(u32(init, trex.payload + 4), u32(init, trex.payload + 20));
  }
  return out;
}

/**
 * Reads a moof box (given as the buffer holding it and its Box) and says whether its first sample is
 * a keyframe. The first sample's flags come from, in order: trun first_sample_flags, trun per-sample
 * flags, tfhd default_sample_flags, trex default_sample_flags.
 */
export function parseMoof(buf: Uint8Array, moof: Box, trexDefaults: ReadonlyMap<number, number> = new Map()): FragmentInfo {
  let samples = 0;
  let firstFlags: number | null = null;
  let baseDecodeTime: number | null = null;
  for (const traf of childBoxes(buf, moof.payload, moof.end)) {
    if (traf.type !== 'traf') continue;
    const children = childBoxes(buf, traf.payload, traf.end);
    let trackDefault: number | null = null;
    const tfhd = children.find((b) => b.type === 'tfhd');
    if (tfhd && tfhd.end - tfhd.payload >= 8) {
      const flags = u32(buf, tfhd.payload) & 0xffffff;
      const trackId = u32(buf, tfhd.payload + 4);
      let at = tfhd.payload + 8;
      if (flags & 0x01) at += 8; // base_data_offset
      if (flags & 0x02) at += 4; // sample_description_index
      if (flags & 0x08) at += 4; // default_sample_duration
      if (flags & 0x10) at += 4; // default_sample_size
      if (flags & 0x20 && at + 4 <= tfhd.end) trackDefault = u32(buf, at);
      else if (trexDefaults.has(trackId)) trackDefault = trexDefaults.get(trackId)!;
    }
    const tfdt = children.find((b) => b.type === 'tfdt');
    if (tfdt && baseDecodeTime === null && tfdt.end - tfdt.payload >= 8) {
      const version = buf[tfdt.payload];
      baseDecodeTime =
        version === 1 && tfdt.end - tfdt.payload >= 12
          ? u32(buf, tfdt.payload + 4) * 2 ** 32 + u32(buf, tfdt.payload + 8)
          : u32(buf, tfdt.payload + 4);
    }
    for (const trun of children) {
      if (trun.type !== 'trun' || trun.end - trun.payload < 8) continue;
      const flags = u32(buf, trun.payload) & 0xffffff;
      const count = u32(buf, trun.payload + 4);
      let at = trun.payload + 8;
      if (flags & 0x001) at += 4; // data_offset
      let runFirst: number | null = null;
      if (flags & 0x004) {
        if (at + 4 <= trun.end) runFirst = u32(buf, at);
        at += 4;
      }
      if (runFirst === null && count > 0 && flags & 0x400) {
        // per-sample entries: [duration][size][flags][composition offset]; flags of sample 0
        let flagsAt = at;
        if (flags & 0x100) flagsAt += 4;
        if (flags & 0x200) flagsAt += 4;
        if (flagsAt + 4 <= trun.end) runFirst = u32(buf, flagsAt);
      }
      if (runFirst === null && count > 0) runFirst = trackDefault;
      if (samples === 0 && count > 0) firstFlags = runFirst;
      samples += count;
    }
  }
  return { samples, startsWithKeyframe: firstFlags === null ? null : isSyncSampleFlags(firstFlags), baseDecodeTime };
}

/**
 * The RFC 6381 codec string of the first video track in an init segment, e.g. `avc1.64001f`
 * (from avcC: profile, compatibility, level). Null when the segment has no avc1/avc3 entry.
 */
export function codecFromInit(init: Uint8Array): string | null {
  const moov = childBoxes(init, 0, init.length).find((b) => b.type === 'moov');
  if (!moov) return null;
  for (const trak of childBoxes(init, moov.payload, moov.end)) {
    if (trak.type !== 'trak') continue;
    const stsd = findPath(init, trak.payload, trak.end, ['mdia', 'minf', 'stbl', 'stsd']);
    if (!stsd) continue;
    // stsd: version/flags(4) entry_count(4), then sample entries
    for (const entry of childBoxes(init, stsd.payload + 8, stsd.end)) {
      if (entry.type !== 'avc1' && entry.type !== 'avc3') continue;
      // VisualSampleEntry header: 78 bytes before its child boxes
      const avcC = childBoxes(init, entry.payload + 78, entry.end).find((b) => b.type === 'avcC');
      if (!avcC || avcC.end - avcC.payload < 4) continue;
      const hex = (v: number) => v.toString(16).padStart(2, '0');
      return `${entry.type}.${hex(init[avcC.payload + 1])}${hex(init[avcC.payload + 2])}${hex(init[avcC.payload + 3])}`;
    }
  }
  return null;
}

export interface Fmp4Layout {
  /** Top-level box types in order. */
  types: string[];
  /** Complete moof + mdat pairs, in order. */
  fragments: Array<FragmentInfo & { start: number; end: number }>;
  /** Samples in the complete fragments. */
  samples: number;
  /** The bytes end inside a box (a file still being written, or cut short by a crash). */
  truncated: boolean;
}

/** The top-level layout of a whole fragmented MP4 file; only complete boxes count. */
export function readFmp4Layout(buf: Uint8Array): Fmp4Layout {
  const boxes = childBoxes(buf, 0, buf.length);
  const moov = boxes.find((b) => b.type === 'moov');
  const trex = moov ? trexDefaultFlags(buf.subarray(0, moov.end)) : new Map<number, number>();
  const fragments: Fmp4Layout['fragments'] = [];
  for (let i = 0; i + 1 < boxes.length; i++) {
    const [moof, mdat] = [boxes[i], boxes[i + 1]];
    if (moof.type === 'moof' && mdat.type === 'mdat') fragments.push({ ...parseMoof(buf, moof, trex), start: moof.start, end: mdat.end });
  }
  return {
    types: boxes.map((b) => b.type),
    fragments,
    samples: fragments.reduce((n, f) => n + f.samples, 0),
    truncated: (boxes.at(-1)?.end ?? 0) !== buf.length,
  };
}
