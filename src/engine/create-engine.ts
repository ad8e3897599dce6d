/**
 * The engine named by the configuration: `ort` (ONNX Runtime, CPU or WebGPU provider) or `native`
 * (the optional CUDA addon, loaded only when asked for).
 */
import type { Config } from '../config/schema.js';
import { SinkstreamError } from '../errors.js';
import { createOrtEngine, OrtEngine } from './ort/ort-engine.js';
import { PipelineEngine, stageRanges } from './pipeline-engine.js';
import type { Engine, EngineFactory } from './types.js';

const NATIVE_MODULE = './native/native-engine.js';

async function loadNativeFactory(): Promise<EngineFactory> {
  let module: { createNativeEngine?: EngineFactory };
  try {
    module = (await import(NATIVE_MODULE)) as { createNativeEngine?: EngineFactory };
  } catch (e) {
    throw new SinkstreamError(
      'ERR_ENGINE_UNAVAILABLE',
      `engine.name 'native': the CUDA engine cannot be loaded here (${(e as Error).message}). ` +
        `Build it with \`npm run build:native\` on a machine with CUDA, or use engine.name: ort.`,
      { cause: e },
    );
  }
  if (typeof module.createNativeEngine !== 'function') {
    throw new SinkstreamError('ERR_ENGINE_UNAVAILABLE', `engine.name 'native': ${NATIVE_MODULE} does not export createNativeEngine`);
  }
  return module.createNativeEngine;
}

export async function createEngine(config: Config): Promise<Engine> {
  if (config.engine.name === 'native') return (await loadNativeFactory())({ config });
  if (config.engine.stages > 1) return PipelineEngine.create(stageRanges(config), (layers) => OrtEngine.create({ config }, layers));
  return createOrtEngine({ config });
}
