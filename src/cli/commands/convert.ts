/**
 * `sinkstream convert IN OUT.safetensors`: a checkpoint's generator (.pt / .pth as torch.save writes
 * it, or safetensors in any naming) as safetensors in canonical Wan naming, a LoRA merged in if given.
 */
import type { Command } from 'commander';
import { SinkstreamError } from '../../errors.js';
import { convertCheckpoint } from '../../model/convert.js';
import type { SafetensorsDtype } from '../../model/safetensors.js';

const DTYPES: Record<string, SafetensorsDtype> = { f32: 'F32', float32: 'F32', f16: 'F16', float16: 'F16', bf16: 'BF16', bfloat16: 'BF16' };

function numberOption(name: string, value: string | undefined, positive: boolean): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || (positive && n <= 0)) {
    throw new SinkstreamError('ERR_ARGUMENT', `${name} ${JSON.stringify(value)}: expected a ${positive ? 'positive ' : ''}number`);
  }
  return n;
}

interface ConvertFlags {
  lora?: string;
  loraScale?: string;
  loraAlpha?: string;
  generatorKey?: string;
  dtype: string;
}

export function register(program: Command): void {
  program
    .command('convert')
    .argument('<in>', 'checkpoint: .pt / .pth (torch.save) or .safetensors; Wan or diffusers names, any wrapper')
    .argument('<out>', 'the .safetensors file to write (canonical Wan names)')
    .option('--lora <path>', 'merge a LoRA: PEFT directory or adapter_model file, LongLive lora.pt, lora_down/lora_up file')
    .option('--lora-scale <s>', 'multiply the LoRA update (default 1)')
    .option('--lora-alpha <a>', "the LoRA's alpha when the file gives none (default: its rank)")
    .option('--generator-key <name>', 'top-level entry holding the generator (default: generator_ema, else generator)')
    .option('--dtype <type>', 'stored precision: f32, f16 or bf16', 'f32')
    .description("write a checkpoint's generator as safetensors in canonical naming, optionally with a LoRA merged in")
    .action(async (input: string, output: string, flags: ConvertFlags) => {
      const dtype = DTYPES[flags.dtype.toLowerCase()];
      if (!dtype) throw new SinkstreamError('ERR_ARGUMENT', `--dtype ${JSON.stringify(flags.dtype)}: expected f32, f16 or bf16`);
      const result = await convertCheckpoint(input, output, {
        generatorKey: flags.generatorKey,
        lora: flags.lora,
        loraScale: numberOption('--lora-scale', flags.loraScale, false),
        loraAlpha: numberOption('--lora-alpha', flags.loraAlpha, true),
        dtype,
      });
      const from = result.entry ? ` (entry '${result.entry}')` : '';
      const lora = result.loraModules > 0 ? `, LoRA merged into ${result.loraModules} weights` : '';
      process.stdout.write(`wrote ${output}: ${result.tensors} tensors from ${input}${from}, ${result.naming} naming -> canonical, ${dtype}${lora}\n`);
    });
}
