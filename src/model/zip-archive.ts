/**
 * The central directory of a zip archive, read with positioned reads (the archive itself is never
 * loaded): record names, their compression, sizes and where their data starts. Enough for the
 * archives torch.save writes (stored records, ZIP64 for files over 4 GiB, data aligned by padding
 * in the local headers' extra field); deflated records are inflated whole on read.
 */
import type { FileHandle } from 'node:fs/promises';
import { inflateRawSync } from 'node:zlib';
import { modelFileError, readAt } from './model-file.js';

const EOCD_SIGNATURE = 0x06054b50;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const ZIP64_EOCD_SIGNATURE = 0x06064b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;
const EOCD_BYTES = 22;
const MAX_COMMENT = 0xffff;

export const ZIP_MAGIC = Buffer.from([0x50, 0x4b, 0x03, 0x04]);

export interface ZipRecord {
  name: string;
  /** 0 stored, 8 deflated. */
  method: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}



function u64(buf: Buffer, at: number, path: string): number {
  const v = buf.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw modelFileError(path, 'a zip64 size or offset is out of range');
  return Number(v);
}

/** An open zip archive's directory; `handle` stays owned by the caller. */
export class ZipArchive {
  private readonly dataStarts = new Map<string, number>();

  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    readonly fileSize: number,
    readonly records: Map<string, ZipRecord>,
  ) {}

  static async open(handle: FileHandle, path: string): Promise<ZipArchive> {
    const { size } = await handle.stat();
    const tailLength = Math.min(size, EOCD_BYTES + MAX_COMMENT);
    const tail = Buffer.alloc(tailLength);
    await readAt(handle, tail, size - tailLength, path);
    let eocd = -1;
    for (let i = tailLength - EOCD_BYTES; i >= 0; i--) {
      if (tail.readUInt32LE(i) === EOCD_SIGNATURE && i + EOCD_BYTES + tail.readUInt16LE(i + 20) === tailLength) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) {
      throw modelFileError(path, `the zip archive has no end-of-central-directory record (${size} bytes): the file is truncated or not a zip archive`);
    }
    let count = tail.readUInt16LE(eocd + 10);
    let cdSize = tail.readUInt32LE(eocd + 12);
    let cdOffset = tail.readUInt32LE(eocd + 16);
    const eocdAt = size - tailLength + eocd;
    if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      const locatorAt = eocdAt - 20;
      const locator = Buffer.alloc(20);
      if (locatorAt < 0) throw modelFileError(path, 'the zip64 end-of-central-directory locator is missing');
      await readAt(handle, locator, locatorAt, path);
      if (locator.readUInt32LE(0) !== ZIP64_LOCATOR_SIGNATURE) throw modelFileError(path, 'the zip64 end-of-central-directory locator is missing');
      const zip64At = u64(locator, 8, path);
      const record = Buffer.alloc(56);
      if (zip64At + 56 > size) throw modelFileError(path, 'the zip64 end-of-central-directory record is past the end of the file');
      await readAt(handle, record, zip64At, path);
      if (record.readUInt32LE(0) !== ZIP64_EOCD_SIGNATURE) throw modelFileError(path, 'the zip64 end-of-central-directory record is malformed');
      count = u64(record, 32, path);
      cdSize = u64(record, 40, path);
      cdOffset = u64(record, 48, path);
    }
    if (cdOffset + cdSize > size) {
      throw modelFileError(path, `the zip central directory (bytes ${cdOffset}..${cdOffset + cdSize}) is past the end of the file (${size} bytes): the file is truncated`);
    }
    const cd = Buffer.alloc(cdSize);
    await readAt(handle, cd, cdOffset, path);
    const records = new Map<string, ZipRecord>();
    let at = 0;
    for (let n = 0; n < count; n++) {
      if (at + 46 > cd.length || cd.readUInt32LE(at) !== CENTRAL_SIGNATURE) {
        throw modelFileError(path, `zip central directory entry ${n} is malformed`);
      }
      const method = cd.readUInt16LE(at + 10);
      let compressedSize = cd.readUInt32LE(at + 20);
      let uncompressedSize = cd.readUInt32LE(at + 24);
      const nameLength = cd.readUInt16LE(at + 28);
      const extraLength = cd.readUInt16LE(at + 30);
      const commentLength = cd.readUInt16LE(at + 32);
      let localHeaderOffset = cd.readUInt32LE(at + 42);
      const name = cd.toString('utf8', at + 46, at + 46 + nameLength);
      // ZIP64 extended information: the 64-bit values of the fields that hold 0xffffffff, in order.
      let extra = at + 46 + nameLength;
      const extraEnd = extra + extraLength;
      while (extra + 4 <= extraEnd) {
        const id = cd.readUInt16LE(extra);
        const len = cd.readUInt16LE(extra + 2);
        if (id === 0x0001) {
          let p = extra + 4;
          if (uncompressedSize === 0xffffffff) { uncompressedSize = u64(cd, p, path); p += 8; }
          if (compressedSize === 0xffffffff) { compressedSize = u64(cd, p, path); p += 8; }
          if (localHeaderOffset === 0xffffffff) { localHeaderOffset = u64(cd, p, path); p += 8; }
        }
        extra += 4 + len;
      }
      records.set(name, { name, method, compressedSize, size: uncompressedSize, localHeaderOffset });
      at = extraEnd + commentLength;
    }
    return new ZipArchive(path, handle, size, records);
  }

  /** File offset of a record's first data byte (read from its local header once). */
  private async dataStart(record: ZipRecord): Promise<number> {
    const known = this.dataStarts.get(record.name);
    if (known !== undefined) return known;
    const header = Buffer.alloc(30);
    await readAt(this.handle, header, record.localHeaderOffset, this.path);
    if (header.readUInt32LE(0) !== LOCAL_SIGNATURE) {
      throw modelFileError(this.path, `zip record '${record.name}' has no local header at byte ${record.localHeaderOffset}`);
    }
    const start = record.localHeaderOffset + 30 + header.readUInt16LE(26) + header.readUInt16LE(28);
    if (start + record.compressedSize > this.fileSize) {
      throw modelFileError(this.path, `zip record '${record.name}' ends past the end of the file: the file is truncated`);
    }
    this.dataStarts.set(record.name, start);
    return start;
  }

  /** `length` bytes of a record's (uncompressed) data from byte `offset` of the record. */
  async read(name: string, offset = 0, length?: number): Promise<Uint8Array> {
    const record = this.records.get(name);
    if (!record) throw modelFileError(this.path, `the zip archive has no record '${name}'`);
    const want = length ?? record.size - offset;
    if (offset < 0 || want < 0 || offset + want > record.size) {
      throw modelFileError(this.path, `bytes ${offset}..${offset + want} are outside zip record '${name}' (${record.size} bytes)`);
    }
    const start = await this.dataStart(record);
    if (record.method === 0) {
      const out = new Uint8Array(want);
      await readAt(this.handle, out, start + offset, this.path);
      return out;
    }
    if (record.method === 8) {
      const compressed = Buffer.alloc(record.compressedSize);
      await readAt(this.handle, compressed, start, this.path);
      let whole: Buffer;
      try {
        whole = inflateRawSync(compressed);
      } catch {
        throw modelFileError(this.path, `zip record '${name}' does not inflate (corrupt data)`);
      }
      return new Uint8Array(whole.subarray(offset, offset + want)); // a copy: its own buffer
    }
    throw modelFileError(this.path, `zip record '${name}' uses compression method ${record.method}; supported: stored (0), deflate (8)`);
  }
}
