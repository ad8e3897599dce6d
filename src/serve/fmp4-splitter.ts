/**
 * Splits a fragmented-MP4 byte stream (as ffmpeg writes it, in arbitrary chunks) into the init
 * segment (ftyp + moov and anything before the first fragment) and media fragments (moof + mdat,
 * with any styp/sidx/prft boxes in front of them), each tagged with whether it starts with a keyframe.
 */
import { codecFromInit, parseMoof, readBoxHeader, trexDefaultFlags } from '../encode/mp4-boxes.js';

export interface InitSegment {
  data: Buffer;
  /** RFC 6381 codec string (e.g. avc1.64000c); null if the init segment names no AVC track. */
  codec: string | null;
}

export interface MediaFragment {
  data: Buffer;
  keyframe: boolean;
  samples: number;
  /** Sequence number of this fragment in its splitter, from 0. */
  seq: number;
}

export interface SplitterSink {
  onInit(init: InitSegment): void;
  onFragment(fragment: MediaFragment): void;
}

/** Any single box larger than this is taken for corrupt output rather than buffered. */
const MAX_BOX_BYTES = 256 * 1024 * 1024;
const TYPE_RE = /^[\x20-\x7e]{4}$/;

export class Fmp4SplitError extends Error {}

export class Fmp4Splitter {
  private pending: Buffer = Buffer.alloc(0);
  private initParts: Buffer[] = [];
  private fragmentParts: Buffer[] = [];
  private moofSeen = false;
  private keyframe = false;
  private samples = 0;
  private trexDefaults = new Map<number, number>();
  private initDone = false;
  private seq = 0;

  constructor(private readonly sink: SplitterSink) {}

  get hasInit(): boolean {
    return this.initDone;
  }

  /** Feeds bytes; calls the sink for every init segment / fragment completed. Throws Fmp4SplitError on corrupt input. */
  push(chunk: Uint8Array): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : Buffer.from(chunk);
    let at = 0;
    for (;;) {
      const box = readBoxHeader(this.pending, at);
      if (!box) break;
      if (!TYPE_RE.test(box.type) || box.end - box.start < 8 || box.end - box.start > MAX_BOX_BYTES) {
        throw new Fmp4SplitError(`corrupt fMP4 stream: box '${box.type.replace(/[^\x20-\x7e]/g, '?')}' of ${box.end - box.start} bytes`);
      }
      if (box.end > this.pending.length) break;
      this.takeBox(this.pending.subarray(box.start, box.end), box.type);
      at = box.end;
    }
    this.pending = at === 0 ? this.pending : Buffer.from(this.pending.subarray(at));
  }

  private takeBox(bytes: Buffer, type: string): void {
    if (!this.initDone) {
      if (type === 'moof') throw new Fmp4SplitError('corrupt fMP4 stream: moof before moov');
      this.initParts.push(bytes);
      if (type === 'moov') {
        const data = Buffer.concat(this.initParts);
        this.initParts = [];
        this.initDone = true;
        this.trexDefaults = trexDefaultFlags(data);
        this.sink.onInit({ data, codec: codecFromInit(data) });
      }
      return;
    }
    if (type === 'mfra') return; // the index written when ffmpeg ends: not media
    this.fragmentParts.push(bytes);
    if (type === 'moof') {
      const box = readBoxHeader(bytes, 0)!;
      const info = parseMoof(bytes, box, this.trexDefaults);
      this.moofSeen = true;
      // No flags at all: x264 output always marks them, so an unmarked fragment is treated as a delta.
      this.keyframe = info.startsWithKeyframe === true;
      this.samples = info.samples;
    } else if (type === 'mdat' && this.moofSeen) {
      const data = Buffer.concat(this.fragmentParts);
      this.fragmentParts = [];
      this.moofSeen = false;
      this.sink.onFragment({ data, keyframe: this.keyframe, samples: this.samples, seq: this.seq++ });
    }
  }
}
