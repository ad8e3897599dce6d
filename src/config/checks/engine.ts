/** Engine keys that cannot work together (checked with the rest of the configuration). */
import type { ConfigProblem } from '../problems.js';
import type { Config } from '../schema.js';

export function engineConfigProblems(config: Config): ConfigProblem[] {
  const e = config.engine;
  const layers = config.model.arch.layers;
  const problems: ConfigProblem[] = [];
  if (e.devices !== undefined) {
    if (e.name !== 'native') {
      problems.push({ path: 'engine.devices', message: `GPUs per stage are for engine.name 'native' (engine.name is '${e.name}')` });
    } else if (e.devices.length !== e.stages) {
      problems.push({ path: 'engine.devices', message: `${e.devices.length} entries for engine.stages ${e.stages}: give one GPU per stage` });
    }
  }
  if (e.placement !== 'pipeline') {
    if (e.name !== 'native') {
      problems.push({ path: 'engine.placement', message: `'${e.placement}' places whole-model engines on GPUs: it needs engine.name 'native' (engine.name is '${e.name}')` });
    } else if (e.stages < 2) {
      problems.push({
        path: 'engine.placement',
        message: `'${e.placement}' spreads streams over several GPUs: give them as engine.devices (with engine.stages as many), or engine.stages >= 2 GPUs from engine.device`,
      });
    }
  }
  if (e.dtype === 'fp8' && e.name !== 'native') {
    problems.push({
      path: 'engine.dtype',
      message: `'fp8' (FP8 products) runs in the native engine: it needs engine.name 'native' (engine.name is '${e.name}'); ONNX Runtime takes 'float32' or 'float16'`,
    });
  }
  if (e.attention === 'fp8' && (e.name !== 'native' || e.dtype === 'float32')) {
    problems.push({
      path: 'engine.attention',
      message: `'fp8' runs cuDNN's FP8 attention in the native engine's bf16 path: it needs engine.name 'native' and engine.dtype 'float16' or 'fp8' (they are '${e.name}' and '${e.dtype}')`,
    });
  }
  if (e.attentionKernel !== 'auto' && (e.name !== 'native' || e.dtype === 'float32')) {
    problems.push({
      path: 'engine.attentionKernel',
      message: `'${e.attentionKernel}' picks the native engine's bf16 attention kernel: it needs engine.name 'native' and engine.dtype 'float16' or 'fp8' (they are '${e.name}' and '${e.dtype}')`,
    });
  }
  if (e.stages > layers) problems.push({ path: 'engine.stages', message: `${e.stages} is more than the model's ${layers} layers` });
  if (e.stageLayers !== undefined) {
    const sum = e.stageLayers.reduce((a, b) => a + b, 0);
    if (e.stageLayers.length !== e.stages) {
      problems.push({ path: 'engine.stageLayers', message: `${e.stageLayers.length} entries for engine.stages ${e.stages}: give one layer count per stage` });
    } else if (sum !== layers) {
      problems.push({ path: 'engine.stageLayers', message: `[${e.stageLayers.join(', ')}] adds up to ${sum}; the model has ${layers} layers` });
    }
  }
  return problems;
}
