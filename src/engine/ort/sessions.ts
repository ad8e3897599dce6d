/**
 * ONNX Runtime sessions from graph builders, for the CPU and WebGPU providers. Models over 1 GB of
 * initializers go through a temporary directory with ONNX external data (the protobuf limit is 2 GB).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { SinkstreamError } from '../../errors.js';
import type { GraphBuilder } from '../../onnx/graph-builder.js';

export type Provider = 'cpu' | 'webgpu';

export interface SessionSettings {
  provider: Provider;
  /** CPU intra-op threads; 0 = ONNX Runtime's default (all physical cores). */
  threads: number;
  /** CPU: let idle intra-op threads spin-wait for work (ONNX Runtime's default) instead of sleeping. */
  allowSpinning?: boolean;
  /** Outputs that stay on the GPU (WebGPU provider only). */
  gpuOutputs?: (name: string) => boolean;
}

export interface OwnedSession {
  session: ort.InferenceSession;
  release(): Promise<void>;
}

const EXTERNAL_DATA_ABOVE = 1 << 30;

export function sessionOptions(settings: SessionSettings, outputNames: string[]): ort.InferenceSession.SessionOptions {
  const options: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    logSeverityLevel: 3,
  };
  if (settings.provider === 'cpu') {
    options.executionProviders = ['cpu'];
    if (settings.threads > 0) options.intraOpNumThreads = settings.threads;
    options.interOpNumThreads = 1;
    // Spinning threads hold every core between runs, so the loop's own work on the main thread (and
    // the other small sessions) wait for a core: measured slower blocks on a 2-core machine.
    if (!settings.allowSpinning) options.extra = { session: { intra_op: { allow_spinning: '0' } } };
  } else {
    options.executionProviders = ['webgpu'];
    const gpu = settings.gpuOutputs;
    if (gpu) {
      options.preferredOutputLocation = Object.fromEntries(outputNames.map((n) => [n, gpu(n) ? 'gpu-buffer' : 'cpu'])) as Record<
        string,
        ort.Tensor.DataLocation
      >;
    }
  }
  return options;
}

export async function createSession(builder: GraphBuilder, settings: SessionSettings, outputNames: string[]): Promise<OwnedSession> {
  const options = sessionOptions(settings, outputNames);
  let dir: string | undefined;
  try {
    let session: ort.InferenceSession;
    if (builder.initializerBytes() > EXTERNAL_DATA_ABOVE) {
      dir = mkdtempSync(path.join(os.tmpdir(), 'sinkstream-onnx-'));
      session = await ort.InferenceSession.create(builder.writeModel(dir), options);
    } else {
      session = await ort.InferenceSession.create(builder.serialize(), options);
    }
    const where = dir;
    return {
      session,
      release: async () => {
        await session.release();
        if (where !== undefined) rmSync(where, { recursive: true, force: true });
      },
    };
  } catch (e) {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    const message = (e as Error).message ?? String(e);
    if (settings.provider === 'webgpu' && /adapter|webgpu|vulkan|dawn/i.test(message)) {
      throw new SinkstreamError(
        'ERR_ENGINE_UNAVAILABLE',
        `engine.provider 'webgpu': ONNX Runtime could not start WebGPU here (${message.split('\n')[0]}). ` +
          `It needs a GPU with a Vulkan driver and the Vulkan loader (libvulkan.so.1); use engine.provider: cpu otherwise.`,
        { cause: e },
      );
    }
    throw new SinkstreamError('ERR_ENGINE', `ONNX Runtime could not create the ${builder.graphName} session: ${message}`, { cause: e });
  }
}
