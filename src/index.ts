/**
 * sinkstream's library API.
 *
 *   import { loadConfig, createGenerator } from 'sinkstream';
 *   const config = loadConfig({ set: ['cache.policy=deep-sink', 'cache.window=21', 'cache.sink=10'] });
 *   const generator = await createGenerator(config);
 *   for await (const block of generator) { ... block.frames ... }   // RGB24 frames, block by block
 *   await generator.close();
 */
export { loadConfig, validateConfig, parseOverride, defaultConfigPath, type LoadOptions } from './config/load.js';
export { configSchema, type Config, type ConfigInput, type CacheConfig, type EngineConfig, type ArchConfig } from './config/schema.js';
export { createGenerator, type BlockGenerator, type GeneratorOptions } from './loop/generator.js';
import type { BlockGenerator } from './loop/generator.js';
/** @deprecated Use `BlockGenerator` (this name shadows the built-in `Generator` type). */
export type Generator = BlockGenerator;
export type { FrameBlock, BlockTimings } from './loop/types.js';
export type { Engine, EngineOptions, ForwardRequest, ForwardResult, CacheUpdate, EngineInfo } from './engine/types.js';
export type { CachePolicy, BlockPlan, HeldFrame, PlannedSlot } from './cache/types.js';
export { createEngine } from './engine/create-engine.js';
/** Several in-process streams' forwards as batched engine calls (engine.maxBatch): wrap each stream's engine with member(). */
export { ForwardBatcher } from './engine/forward-batcher.js';
export type { BatchedForward } from './engine/types.js';
export { openMp4File } from './encode/mp4-file-writer.js';
export { SinkstreamError, type ErrorCode } from './errors.js';
export { modelDims, type ModelDims } from './model/dims.js';
