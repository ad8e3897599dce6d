/**
 * safetensors files: an 8-byte little-endian header length N, N bytes of JSON
 * ({ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__": {..} }), then the raw
 * little-endian tensor bytes; offsets are relative to the end of the header.
 *
 * The reader opens the file, parses and validates the header, then reads each tensor by offset on
 * demand (no byte is read twice, unrelated tensors are never read). F32, F16 and BF16 are converted
 * to float32. The writer emits F32, F16 or BF16 (round to nearest even).
 * Host byte order is assumed little-endian (x86-64, arm64).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { SinkstreamError } from '../errors.js';
import type { WeightTensor } from './weights.js';
import { shapeSize } from './expected-shapes.js';
import { modelFileError, openModelFile, readAt } from './model-file.js';

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16';

const DTYPE_BYTES: Record<string, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
  F8_E4M3: 1, F8_E5M2: 1, U16: 2, U32: 4, U64: 8,
};

/** The safetensors format's own cap on the header size. */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export interface SafetensorsEntry {
  dtype: string;
  shape: number[];
  /** Byte range relative to the start of the data section. */
  begin: number;
  end: number;
}


/** Parses and validates a header's JSON against the data section's size. */
export function parseSafetensorsHeader(
  json: string,
  dataBytes: number,
  path = 'safetensors file',
): { entries: Map<string, SafetensorsEntry>; metadata: Record<string, string> } {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (e) {
    throw modelFileError(path, 'the safetensors header is not valid JSON', e);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw modelFileError(path, 'the safetensors header is not a JSON object');
  }
  const entries = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (value !== null && typeof value === 'object') metadata = value as Record<string, string>;
      continue;
    }
    const v = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const bad = (why: string): SinkstreamError => modelFileError(path, `tensor '${name}': ${why}`);
    if (v === null || typeof v !== 'object') throw bad('its header entry is not an object');
    if (typeof v.dtype !== 'string' || !(v.dtype in DTYPE_BYTES)) throw bad(`unknown dtype ${JSON.stringify(v.dtype)}`);
    if (!Array.isArray(v.shape) || !v.shape.every((s) => Number.isInteger(s) && s >= 0)) throw bad('shape is not a list of non-negative integers');
    const offs = v.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isInteger(o) && o >= 0)) {
      throw bad('data_offsets is not [begin, end]');
    }
    const [begin, end] = offs as [number, number];
    const expected = shapeSize(v.shape as number[]) * DTYPE_BYTES[v.dtype];
    if (end < begin || end - begin !== expected) {
      throw bad(`data_offsets [${begin}, ${end}] hold ${end - begin} bytes, its ${v.dtype} shape [${(v.shape as number[]).join(', ')}] needs ${expected}`);
    }
    if (end > dataBytes) throw bad(`data_offsets end ${end} is past the end of the data (${dataBytes} bytes): the file is truncated`);
    entries.set(name, { dtype: v.dtype, shape: v.shape as number[], begin, end });
  }
  return { entries, metadata };
}

/** An open safetensors file; tensors are read one at a time by offset. Close it when done. */
export class SafetensorsFile {
  private closed = false;
  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    private readonly dataStart: number,
    readonly entries: Map<string, SafetensorsEntry>,
    readonly metadata: Record<string, string>,
  ) {}

  static async open(path: string): Promise<SafetensorsFile> {
    return SafetensorsFile.fromHandle(await openModelFile(path), path);
  }

  /** Reads the header through an open handle, which the file then owns (closed if this fails). */
  static async fromHandle(handle: FileHandle, path: string): Promise<SafetensorsFile> {
    try {
      const { size } = await handle.stat();
      if (size < 8) throw modelFileError(path, `not a safetensors file (${size} bytes, shorter than the 8-byte header length)`);
      const lenBuf = Buffer.alloc(8);
      await readAt(handle, lenBuf, 0, path);
      const headerLen = Number(lenBuf.readBigUInt64LE(0));
      if (headerLen < 2 || headerLen > MAX_HEADER_BYTES || headerLen > size - 8) {
        throw modelFileError(path, `not a safetensors file (header length ${headerLen} does not fit the file of ${size} bytes)`);
      }
      const headerBuf = Buffer.alloc(headerLen);
      await readAt(handle, headerBuf, 8, path);
      const { entries, metadata } = parseSafetensorsHeader(headerBuf.toString('utf8'), size - 8 - headerLen, path);
      return new SafetensorsFile(path, handle, 8 + headerLen, entries, metadata);
    } catch (e) {
      await handle.close();
      if (e instanceof SinkstreamError) throw e;
      const code = (e as NodeJS.ErrnoException).code;
      // open() takes a folder on Linux; reading it is what fails.
      if (code === 'EISDIR') throw modelFileError(path, 'is a folder; expected a .safetensors file', e);
      throw modelFileError(path, `cannot read the file (${code ?? String(e)})`, e);
    }
  }

  keys(): string[] {
    return [...this.entries.keys()];
  }

  /** Reads one tensor as float32. */
  async read(name: string): Promise<WeightTensor> {
    if (this.closed) throw new SinkstreamError('ERR_CLOSED', `${this.path}: read('${name}') after close()`);
    const entry = this.entries.get(name);
    if (!entry) throw modelFileError(this.path, `no tensor '${name}'`);
    const count = shapeSize(entry.shape);
    const data = new Float32Array(count);
    if (entry.dtype === 'F32') {
      await readAt(this.handle, new Uint8Array(data.buffer), this.dataStart + entry.begin, this.path);
    } else if (entry.dtype === 'F16' || entry.dtype === 'BF16') {
      const half = new Uint16Array(count);
      await readAt(this.handle, new Uint8Array(half.buffer), this.dataStart + entry.begin, this.path);
      if (entry.dtype === 'F16') f16ToF32(half, data);
      else bf16ToF32(half, data);
    } else {
      throw modelFileError(this.path, `tensor '${name}' has dtype ${entry.dtype}; supported: F32, F16, BF16`);
    }
    return { shape: [...entry.shape], data };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }
}


/** Reads every tensor (or those `select` accepts) of a file. */
export async function readSafetensors(path: string, select?: (name: string) => boolean): Promise<Map<string, WeightTensor>> {
  const file = await SafetensorsFile.open(path);
  try {
    const out = new Map<string, WeightTensor>();
    for (const name of file.keys()) if (!select || select(name)) out.set(name, await file.read(name));
    return out;
  } finally {
    await file.close();
  }
}

// ---- half-precision conversions ------------------------------------------------------------

let f16Table: Float32Array | null = null;

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

export function f16ToF32(src: Uint16Array, dst: Float32Array): void {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) f16Table[i] = halfToFloat(i);
  }
  const table = f16Table;
  for (let i = 0; i < src.length; i++) dst[i] = table[src[i]];
}

export function bf16ToF32(src: Uint16Array, dst: Float32Array): void {
  const out = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  for (let i = 0; i < src.length; i++) out[i] = src[i] << 16;
}

export function f32ToBf16(src: Float32Array, dst: Uint16Array): void {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) {
    const b = bits[i];
    if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0) {
      dst[i] = (b >>> 16) | 0x40; // quiet NaN
      continue;
    }
    dst[i] = ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
  }
}

export function f32ToF16(src: Float32Array, dst: Uint16Array): void {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) {
    const b = bits[i];
    const sign = (b >>> 16) & 0x8000;
    const exp = (b >>> 23) & 0xff;
    let mant = b & 0x7fffff;
    if (exp === 0xff) {
      dst[i] = sign | 0x7c00 | (mant ? 0x200 : 0);
      continue;
    }
    const e = exp - 127 + 15;
    if (e >= 31) {
      dst[i] = sign | 0x7c00; // overflow -> infinity
      continue;
    }
    if (e <= 0) {
      if (e < -10) {
        dst[i] = sign; // underflow -> signed zero
        continue;
      }
      mant |= 0x800000;
      const shift = 14 - e;
      const halfway = 1 << (shift - 1);
      const rem = mant & ((1 << shift) - 1);
      let h = mant >>> shift;
      if (rem > halfway || (rem === halfway && (h & 1))) h++;
      dst[i] = sign | h;
      continue;
    }
    let h = (e << 10) | (mant >>> 13);
    const rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++; // may carry into the exponent: still correct
    dst[i] = sign | h;
  }
}

// ---- writer ----------------------------------------------------------------------------------

export interface WriteOptions {
  dtype?: SafetensorsDtype;
  metadata?: Record<string, string>;
}

function encodeTensor(t: WeightTensor, dtype: SafetensorsDtype): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const half = new Uint16Array(t.data.length);
  if (dtype === 'F16') f32ToF16(t.data, half);
  else f32ToBf16(t.data, half);
  return new Uint8Array(half.buffer);
}

function checkSize(name: string, t: WeightTensor): void {
  if (shapeSize(t.shape) !== t.data.length) {
    throw new SinkstreamError('ERR_MODEL_SHAPE', `tensor '${name}': shape [${t.shape.join(', ')}] does not match ${t.data.length} values`);
  }
}

function buildHeader(tensors: Iterable<[string, WeightTensor]>, dtype: SafetensorsDtype, metadata?: Record<string, string>): Buffer {
  const shapes: Array<[string, readonly number[]]> = [];
  for (const [name, t] of tensors) {
    checkSize(name, t);
    shapes.push([name, t.shape]);
  }
  return headerFor(shapes, dtype, metadata);
}

function headerFor(shapes: Iterable<[string, readonly number[]]>, dtype: SafetensorsDtype, metadata?: Record<string, string>): Buffer {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  const bytes = DTYPE_BYTES[dtype];
  let offset = 0;
  for (const [name, shape] of shapes) {
    const size = shapeSize(shape) * bytes;
    header[name] = { dtype, shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = JSON.stringify(header);
  // Pad with spaces so the data section starts 8-byte aligned, as the reference writer does.
  const pad = (8 - (Buffer.byteLength(json) % 8)) % 8;
  json += ' '.repeat(pad);
  const headerBytes = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + headerBytes.length);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  return out;
}

/** A whole file in memory (small models, tests). */
export function encodeSafetensors(tensors: Map<string, WeightTensor>, options: WriteOptions = {}): Buffer {
  const dtype = options.dtype ?? 'F32';
  const parts: Uint8Array[] = [buildHeader(tensors, dtype, options.metadata)];
  for (const t of tensors.values()) parts.push(encodeTensor(t, dtype));
  return Buffer.concat(parts);
}

/** Writes tensors to `path`, one tensor at a time (memory stays at one tensor's conversion). */
export async function writeSafetensors(path: string, tensors: Map<string, WeightTensor>, options: WriteOptions = {}): Promise<void> {
  for (const [name, t] of tensors) checkSize(name, t); // before the file is created
  const shapes = [...tensors].map(([name, t]): [string, readonly number[]] => [name, t.shape]);
  await writeSafetensorsStreamed(path, shapes, async (name) => tensors.get(name)!, options);
}

/**
 * Writes tensors of the given shapes in order, each fetched by `read` when its turn comes: memory stays
 * at one tensor (converting a checkpoint larger than memory). A tensor of another shape is ERR_MODEL_SHAPE.
 */
export async function writeSafetensorsStreamed(
  path: string,
  shapes: ReadonlyArray<[string, readonly number[]]>,
  read: (name: string) => Promise<WeightTensor>,
  options: WriteOptions = {},
): Promise<void> {
  const dtype = options.dtype ?? 'F32';
  const header = headerFor(shapes, dtype, options.metadata);
  let handle: FileHandle;
  try {
    handle = await open(path, 'w');
  } catch (e) {
    throw modelFileError(path, `cannot write the file (${(e as NodeJS.ErrnoException).code ?? String(e)})`, e);
  }
  try {
    await handle.write(header);
    for (const [name, shape] of shapes) {
      const t = await read(name);
      checkSize(name, t);
      if (t.shape.length !== shape.length || t.shape.some((v, i) => v !== shape[i])) {
        throw new SinkstreamError('ERR_MODEL_SHAPE', `tensor '${name}': read with shape [${t.shape.join(', ')}], declared [${shape.join(', ')}]`);
      }
      await handle.write(encodeTensor(t, dtype));
    }
  } finally {
    await handle.close();
  }
}
