/**
 * What this machine's ONNX Runtime CPU provider sustains on one large float32 matrix product, the
 * practical ceiling `sinkstream bench --peak` compares the model's forward against (a vendor's peak
 * would assume clocks and vector units this code cannot see).
 */
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../../onnx/graph-builder.js';
import { createSession } from './sessions.js';

export interface MatmulPeak {
  size: number;
  runs: number;
  gflops: number;
}

export async function measureMatmulPeak(threads: number, size = 1024, runs = 20): Promise<MatmulPeak> {
  const b = new GraphBuilder('sinkstream-matmul-peak');
  const a = b.input('a', 'float32', [size, size]);
  const w = b.floatInitializer('w', 'float32', [size, size], Float32Array.from({ length: size * size }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5));
  b.output(b.op('MatMul', [a, w]), 'float32', [size, size], 'c');
  const owned = await createSession(b, { provider: 'cpu', threads }, ['c']);
  try {
    const input = new ort.Tensor('float32', Float32Array.from({ length: size * size }, (_, i) => ((i * 104729) % 1000) / 1000 - 0.5), [size, size]);
    const times: number[] = [];
    for (let r = 0; r < runs + 3; r++) {
      const t0 = performance.now();
      await owned.session.run({ a: input });
      if (r >= 3) times.push(performance.now() - t0);
    }
    // The best run: a ceiling, not a typical figure (other work on the machine only slows runs down).
    return { size, runs, gflops: (2 * size ** 3) / (Math.min(...times) * 1e6) };
  } finally {
    await owned.release();
  }
}
