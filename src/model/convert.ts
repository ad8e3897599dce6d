/**
 * A checkpoint's generator written as safetensors in canonical (original Wan) naming, with a LoRA
 * merged in if given: what `sinkstream convert` does. Tensors stream one at a time (a 1.3B model's
 * 11 GB .pt converts in one tensor's memory); the output appears under its name only when complete.
 */
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { SinkstreamError } from '../errors.js';
import { openMappedCheckpoint } from './load-weights.js';
import { checkLora, mergeLoraInto, readLora, type LoraAdapter } from './lora.js';
import { writeSafetensorsStreamed, type SafetensorsDtype } from './safetensors.js';

export interface ConvertOptions {
  generatorKey?: string;
  lora?: string;
  loraScale?: number;
  loraAlpha?: number;
  dtype?: SafetensorsDtype;
}

export interface ConvertResult {
  tensors: number;
  /** The entry the generator came from ('' for a plain state dict). */
  entry: string;
  naming: string;
  loraModules: number;
}

export async function convertCheckpoint(input: string, output: string, options: ConvertOptions = {}): Promise<ConvertResult> {
  if (path.resolve(input) === path.resolve(output)) {
    throw new SinkstreamError('ERR_ARGUMENT', `the output ${output} is the input checkpoint; write to another file`);
  }
  const lora: LoraAdapter | null = options.lora ? await readLora(options.lora) : null;
  const { reader, prefix, mapping, sourceOf } = await openMappedCheckpoint(input, options.generatorKey);
  const partial = `${output}.partial`;
  try {
    const shapes: Array<[string, readonly number[]]> = [...sourceOf].map(([canonical, source]) => [canonical, reader.entries.get(source)!.shape]);
    const shapeOf = new Map(shapes);
    if (lora) checkLora(lora, (key) => shapeOf.get(key));
    const entry = prefix.replace(/\.$/, '');
    const metadata: Record<string, string> = {
      format: 'pt',
      'sinkstream.source': path.basename(input),
      'sinkstream.sourceNaming': mapping.naming,
    };
    if (entry) metadata['sinkstream.entry'] = entry;
    if (lora) {
      metadata['sinkstream.lora'] = path.basename(options.lora!);
      metadata['sinkstream.loraScale'] = String(options.loraScale ?? 1);
    }
    await writeSafetensorsStreamed(
      partial,
      shapes,
      async (canonical) => {
        const tensor = await reader.read(sourceOf.get(canonical)!);
        if (lora) mergeLoraInto(canonical, tensor, lora, { scale: options.loraScale, alpha: options.loraAlpha });
        return tensor;
      },
      { dtype: options.dtype ?? 'F32', metadata },
    );
    await rename(partial, output);
    return { tensors: shapes.length, entry, naming: mapping.naming, loraModules: lora?.modules.length ?? 0 };
  } catch (e) {
    await rm(partial, { force: true });
    throw e;
  } finally {
    await reader.close();
  }
}
