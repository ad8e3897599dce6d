/**
 * PyTorch checkpoints as torch.save writes them since torch 1.6: a zip archive holding
 * `<archive>/data.pkl` (a pickle of the saved object in which each tensor is a call to
 * torch._utils._rebuild_tensor_v2 on a persistent storage id), one `<archive>/data/<key>` record
 * per storage (raw little-endian bytes, stored uncompressed) and `<archive>/byteorder`.
 *
 * The reader parses the zip directory and the pickle at open (no tensor byte is read then) and
 * lists every tensor under a flattened dotted key across nested dicts: the `blocks.0.self_attn.q.weight`
 * of `{'generator_ema': {'model.blocks.0...': t}}` is `generator_ema.model.blocks.0.self_attn.q.weight`.
 * A tensor is read on demand with positioned reads of its storage, converted to float32 (from
 * float32/16, bfloat16, float64 or integer/bool storages), strides and storage offset honoured.
 *
 * `openCheckpoint` opens either this format or a safetensors file, by content.
 */
import type { FileHandle } from 'node:fs/promises';
import { SinkstreamError } from '../errors.js';
import { shapeSize } from './expected-shapes.js';
import { PickleCallable, PickleError, PickleGlobal, unpickle } from './pickle.js';
import { bf16ToF32, f16ToF32, SafetensorsFile } from './safetensors.js';
import type { WeightTensor } from './weights.js';
import { modelFileError, openModelFile, readAt } from './model-file.js';
import { ZIP_MAGIC, ZipArchive } from './zip-archive.js';

/** Element types, named as safetensors names them. */
export type TorchDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

const DTYPE_BYTES: Record<TorchDtype, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

const STORAGE_DTYPES: Record<string, TorchDtype> = {
  FloatStorage: 'F32', DoubleStorage: 'F64', HalfStorage: 'F16', BFloat16Storage: 'BF16', LongStorage: 'I64',
  IntStorage: 'I32', ShortStorage: 'I16', CharStorage: 'I8', ByteStorage: 'U8', BoolStorage: 'BOOL',
};

const TORCH_DTYPES: Record<string, TorchDtype> = {
  float32: 'F32', float: 'F32', float64: 'F64', double: 'F64', float16: 'F16', half: 'F16', bfloat16: 'BF16',
  int64: 'I64', long: 'I64', int32: 'I32', int: 'I32', int16: 'I16', short: 'I16', int8: 'I8', uint8: 'U8', bool: 'BOOL',
};

/** One tensor's description in a checkpoint (what `entries` maps a key to). */
export interface CheckpointEntry {
  dtype: string;
  shape: number[];
}

/** What both checkpoint readers offer: listed tensors, read one at a time as float32. */
export interface CheckpointReader {
  readonly path: string;
  readonly entries: ReadonlyMap<string, CheckpointEntry>;
  keys(): string[];
  read(key: string): Promise<WeightTensor>;
  close(): Promise<void>;
}

/** A storage's element type; null for torch.UntypedStorage (bytes; the tensor names its dtype). */
class StorageType {
  constructor(readonly dtype: TorchDtype | null, readonly name: string) {}
}

class DtypeValue {
  constructor(readonly dtype: TorchDtype) {}
}

interface StorageRef {
  key: string;
  dtype: TorchDtype | null;
}

/** A tensor as the pickle describes it: a view (offset, shape, strides in elements) of a storage. */
class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly dtype: TorchDtype,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}

export interface TorchCheckpointEntry extends CheckpointEntry {
  dtype: TorchDtype;
  /** Zip record of the storage. */
  record: string;
  /** In elements. */
  offset: number;
  stride: number[];
}


function isIntList(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((x) => Number.isInteger(x) && (x as number) >= 0);
}

function rebuildTensor(storage: unknown, offset: unknown, size: unknown, stride: unknown, dtype?: unknown): TensorRef {
  if (!(storage instanceof Object) || !('key' in storage)) throw new PickleError('a tensor is rebuilt from something that is not a storage');
  const ref = storage as StorageRef;
  const elementType = dtype instanceof DtypeValue ? dtype.dtype : ref.dtype;
  if (elementType === null) throw new PickleError('a tensor of an untyped storage names no dtype');
  if (!Number.isInteger(offset) || (offset as number) < 0 || !isIntList(size) || !isIntList(stride) || size.length !== stride.length) {
    throw new PickleError('a tensor has a malformed offset, size or stride');
  }
  return new TensorRef(ref, elementType, offset as number, [...size], [...stride]);
}

/** Globals a state dict's pickle names; others become opaque objects (or an error for torch rebuilders). */
function resolveGlobal(module: string, name: string): unknown {
  const full = `${module}.${name}`;
  switch (full) {
    case 'torch._utils._rebuild_tensor_v2':
    case 'torch._utils._rebuild_tensor':
      return new PickleCallable(full, (a) => rebuildTensor(a[0], a[1], a[2], a[3]));
    case 'torch._utils._rebuild_tensor_v3':
      return new PickleCallable(full, (a) => rebuildTensor(a[0], a[1], a[2], a[3], a[6]));
    case 'torch._utils._rebuild_parameter':
    case 'torch._utils._rebuild_parameter_with_state':
      return new PickleCallable(full, (a) => a[0]);
    case 'torch._tensor._rebuild_from_type_v2':
    case 'torch._utils._rebuild_from_type_v2':
      return new PickleCallable(full, (a) => {
        const [fn, , args] = a;
        if (fn instanceof PickleCallable && Array.isArray(args)) return fn.call(args);
        throw new PickleError(`${full} wraps an unsupported function`);
      });
    case 'collections.OrderedDict':
    case 'builtins.dict':
    case '__builtin__.dict':
      return new PickleCallable(full, (a) => {
        const dict = new Map<unknown, unknown>();
        if (Array.isArray(a[0])) for (const pair of a[0]) if (Array.isArray(pair)) dict.set(pair[0], pair[1]);
        return dict;
      });
    case 'torch.UntypedStorage':
    case 'torch.storage.UntypedStorage':
    case 'torch.storage._UntypedStorage':
      return new StorageType(null, full);
  }
  if (module === 'torch' && name in STORAGE_DTYPES) return new StorageType(STORAGE_DTYPES[name], full);
  if (module === 'torch' && name in TORCH_DTYPES) return new DtypeValue(TORCH_DTYPES[name]);
  if (module.startsWith('torch') && (/^_rebuild/.test(name) || /Storage$/.test(name))) {
    throw new PickleError(`unsupported global ${full} (a tensor or storage kind this reader does not read: quantized, sparse, nested or a non-float type)`);
  }
  return undefined;
}

interface ParsedArchive {
  prefix: string;
  entries: Map<string, TorchCheckpointEntry>;
}

async function parseArchive(zip: ZipArchive, path: string): Promise<ParsedArchive> {
  const pickles = [...zip.records.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n) || n === 'data.pkl');
  if (pickles.length === 0) {
    const torchScript = [...zip.records.keys()].some((n) => /(^|\/)constants\.pkl$/.test(n));
    throw modelFileError(
      path,
      torchScript
        ? 'a TorchScript archive (torch.jit.save), not a torch.save checkpoint of a state dict'
        : 'a zip archive without a data.pkl record: not a PyTorch checkpoint (expected what torch.save writes)',
    );
  }
  if (pickles.length > 1) throw modelFileError(path, `a zip archive with ${pickles.length} data.pkl records (${pickles.join(', ')}); expected one`);
  const prefix = pickles[0].slice(0, -'data.pkl'.length);
  if (zip.records.has(`${prefix}byteorder`)) {
    const order = new TextDecoder().decode(await zip.read(`${prefix}byteorder`)).trim();
    if (order !== 'little') throw modelFileError(path, `tensors stored in '${order}' byte order; only little-endian checkpoints are read`);
  }

  const storages = new Map<string, StorageRef>();
  const persistentLoad = (pid: unknown): unknown => {
    if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 3) {
      throw new PickleError(`unsupported persistent id ${JSON.stringify(Array.isArray(pid) ? pid[0] : typeof pid)} (expected a storage)`);
    }
    const [, type, key] = pid;
    if (!(type instanceof StorageType)) {
      const named = type instanceof PickleGlobal ? type.fullName : String(type);
      throw new PickleError(`unsupported storage type ${named}`);
    }
    const id = String(key);
    const known = storages.get(id);
    if (known) return known;
    const ref: StorageRef = { key: id, dtype: type.dtype };
    storages.set(id, ref);
    return ref;
  };

  let root: unknown;
  try {
    root = unpickle(await zip.read(pickles[0]), { resolveGlobal, persistentLoad });
  } catch (e) {
    if (e instanceof PickleError) throw modelFileError(path, `${pickles[0]}: ${e.message}`, e);
    throw e;
  }

  const entries = new Map<string, TorchCheckpointEntry>();
  const visit = (value: unknown, key: string): void => {
    if (value instanceof TensorRef) {
      if (entries.has(key)) throw modelFileError(path, `two tensors flatten to the same key '${key}'`);
      const record = `${prefix}data/${value.storage.key}`;
      const stored = zip.records.get(record);
      if (!stored) throw modelFileError(path, `tensor '${key}': its storage record '${record}' is missing`);
      const bytes = DTYPE_BYTES[value.dtype];
      const count = shapeSize(value.shape);
      const extent = count === 0 ? 0 : 1 + value.shape.reduce((s, n, i) => s + (n - 1) * value.stride[i], 0);
      if ((value.offset + extent) * bytes > stored.size) {
        throw modelFileError(path, `tensor '${key}' needs ${(value.offset + extent) * bytes} bytes of storage '${record}', which holds ${stored.size}`);
      }
      entries.set(key, { dtype: value.dtype, shape: value.shape, record, offset: value.offset, stride: value.stride });
    } else if (value instanceof Map) {
      for (const [k, v] of value) visit(v, key === '' ? String(k) : `${key}.${String(k)}`);
    } else if (Array.isArray(value)) {
      value.forEach((v, i) => visit(v, key === '' ? String(i) : `${key}.${i}`));
    }
    // Numbers, strings, None and objects of other classes carry no tensors: skipped.
  };
  visit(root, '');
  if (root instanceof TensorRef) throw modelFileError(path, 'the checkpoint is a single tensor, not a dict of named tensors');
  if (entries.size === 0) throw modelFileError(path, 'the checkpoint holds no tensors (expected a state dict, or a dict of state dicts)');
  return { prefix, entries };
}

function isContiguous(shape: number[], stride: number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== expected) return false;
    expected *= shape[i];
  }
  return true;
}

function toFloat32(bytes: Uint8Array, dtype: TorchDtype, count: number): Float32Array {
  // `bytes` is a fresh buffer (offset 0), so typed views over it are aligned.
  const buf = bytes.buffer;
  switch (dtype) {
    case 'F32': return new Float32Array(buf, bytes.byteOffset, count);
    case 'F16': { const out = new Float32Array(count); f16ToF32(new Uint16Array(buf, bytes.byteOffset, count), out); return out; }
    case 'BF16': { const out = new Float32Array(count); bf16ToF32(new Uint16Array(buf, bytes.byteOffset, count), out); return out; }
    case 'F64': return Float32Array.from(new Float64Array(buf, bytes.byteOffset, count));
    case 'I64': return Float32Array.from(new BigInt64Array(buf, bytes.byteOffset, count), (v) => Number(v));
    case 'I32': return Float32Array.from(new Int32Array(buf, bytes.byteOffset, count));
    case 'I16': return Float32Array.from(new Int16Array(buf, bytes.byteOffset, count));
    case 'I8': return Float32Array.from(new Int8Array(buf, bytes.byteOffset, count));
    case 'U8': case 'BOOL': return Float32Array.from(bytes.subarray(0, count));
  }
}

/** An open torch.save checkpoint; tensors are read one at a time. Close it when done. */
export class TorchCheckpoint implements CheckpointReader {
  private closed = false;
  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    private readonly zip: ZipArchive,
    /** Every tensor under its flattened dotted key, in the pickle's order. */
    readonly entries: Map<string, TorchCheckpointEntry>,
  ) {}

  static async open(path: string): Promise<TorchCheckpoint> {
    return TorchCheckpoint.fromHandle(await openModelFile(path), path);
  }

  /** Reads the archive through an open handle, which the checkpoint then owns (closed if this fails). */
  static async fromHandle(handle: FileHandle, path: string): Promise<TorchCheckpoint> {
    try {
      const magic = Buffer.alloc(4);
      const { size } = await handle.stat();
      if (size >= 4) await readAt(handle, magic, 0, path);
      if (size < 4 || !magic.equals(ZIP_MAGIC)) {
        throw modelFileError(path, 'not a PyTorch zip checkpoint (expected what torch.save writes: a zip archive starting with "PK")');
      }
      const zip = await ZipArchive.open(handle, path);
      const { entries } = await parseArchive(zip, path);
      return new TorchCheckpoint(path, handle, zip, entries);
    } catch (e) {
      await handle.close();
      throw e;
    }
  }

  keys(): string[] {
    return [...this.entries.keys()];
  }

  /** Reads one tensor as float32 (a contiguous copy when the stored view is strided). */
  async read(key: string): Promise<WeightTensor> {
    if (this.closed) throw new SinkstreamError('ERR_CLOSED', `${this.path}: read('${key}') after close()`);
    const entry = this.entries.get(key);
    if (!entry) throw modelFileError(this.path, `no tensor '${key}'`);
    const count = shapeSize(entry.shape);
    const bytes = DTYPE_BYTES[entry.dtype];
    if (count === 0) return { shape: [...entry.shape], data: new Float32Array(0) };
    if (isContiguous(entry.shape, entry.stride)) {
      const raw = await this.zip.read(entry.record, entry.offset * bytes, count * bytes);
      return { shape: [...entry.shape], data: toFloat32(raw, entry.dtype, count) };
    }
    const extent = 1 + entry.shape.reduce((s, n, i) => s + (n - 1) * entry.stride[i], 0);
    const span = toFloat32(await this.zip.read(entry.record, entry.offset * bytes, extent * bytes), entry.dtype, extent);
    const data = new Float32Array(count);
    const rank = entry.shape.length;
    const index = new Array<number>(rank).fill(0);
    let source = 0;
    for (let i = 0; i < count; i++) {
      data[i] = span[source];
      for (let d = rank - 1; d >= 0; d--) {
        index[d]++;
        source += entry.stride[d];
        if (index[d] < entry.shape[d]) break;
        source -= entry.stride[d] * entry.shape[d];
        index[d] = 0;
      }
    }
    return { shape: [...entry.shape], data };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }
}

/** The first bytes of the legacy (pre-1.6, non-zip) torch.save format: PROTO 2, LONG1 of its magic number. */
const LEGACY_TORCH_MAGIC = Buffer.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]);

/**
 * Opens a checkpoint by its content: a torch.save zip (.pt / .pth / .bin) or a safetensors file.
 * Anything else is ERR_MODEL_FILE naming the file and what was expected.
 */
export async function openCheckpoint(path: string): Promise<CheckpointReader> {
  const handle = await openModelFile(path);
  let head: Buffer;
  let size: number;
  try {
    size = (await handle.stat()).size;
    head = Buffer.alloc(Math.min(size, 16));
    if (head.length > 0) await readAt(handle, head, 0, path);
  } catch (e) {
    await handle.close();
    if (e instanceof SinkstreamError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EISDIR') throw modelFileError(path, 'is a folder; expected a checkpoint file (.safetensors, or a .pt / .pth written by torch.save)', e);
    throw modelFileError(path, `cannot open the file (${code ?? String(e)})`, e);
  }
  // The reader of the format takes the handle over (one open of the file).
  if (head.length >= 4 && head.subarray(0, 4).equals(ZIP_MAGIC)) return TorchCheckpoint.fromHandle(handle, path);
  if (head.length >= 9 && head[8] === 0x7b /* '{' */) {
    // A safetensors header length (its own reader tells a truncated file apart).
    const headerLength = head.readBigUInt64LE(0);
    if (headerLength >= 2n && headerLength <= 100n * 1024n * 1024n) return SafetensorsFile.fromHandle(handle, path);
  }
  await handle.close();
  if (head.length >= LEGACY_TORCH_MAGIC.length && head.subarray(0, LEGACY_TORCH_MAGIC.length).equals(LEGACY_TORCH_MAGIC)) {
    throw modelFileError(path, 'a legacy (pre-1.6, non-zip) torch.save file; load and save it again with torch >= 1.6, or write it as safetensors');
  }
  throw modelFileError(path, `not a checkpoint (${size} bytes): expected a PyTorch checkpoint written by torch.save (a zip archive) or a safetensors file`);
}
