/** Reading model files (safetensors, torch.save zips): opening, positioned reads, errors naming the file. */
import { open, type FileHandle } from 'node:fs/promises';
import { SinkstreamError } from '../errors.js';

/** ERR_MODEL_FILE: `<path>: <what>`. */
export function modelFileError(path: string, what: string, cause?: unknown): SinkstreamError {
  return new SinkstreamError('ERR_MODEL_FILE', `${path}: ${what}`, cause === undefined ? undefined : { cause });
}

/** Opens `path` for reading; a file that cannot be opened is ERR_MODEL_FILE naming it and the system's code. */
export async function openModelFile(path: string): Promise<FileHandle> {
  try {
    return await open(path, 'r');
  } catch (e) {
    throw modelFileError(path, `cannot open the file (${(e as NodeJS.ErrnoException).code ?? String(e)})`, e);
  }
}

/** Fills `into` from `position`; the end of the file before that is ERR_MODEL_FILE (truncated). */
export async function readAt(handle: FileHandle, into: Uint8Array, position: number, path: string): Promise<void> {
  // One read() call is capped at 2 GiB: large ranges are read in chunks.
  const CHUNK = 1 << 30;
  let done = 0;
  while (done < into.length) {
    const length = Math.min(CHUNK, into.length - done);
    const { bytesRead } = await handle.read(into, done, length, position + done);
    if (bytesRead === 0) throw modelFileError(path, `unexpected end of file at byte ${position + done}: the file is truncated`);
    done += bytesRead;
  }
}
