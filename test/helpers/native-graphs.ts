/**
 * engine.cudaGraphs for the native engine's GPU suites (test/engine/contract.test.ts, native.test.ts), from
 * SINKSTREAM_TEST_CUDA_GRAPHS (auto, on or off; default auto): the GPU run goes through them with graphs off and on.
 */
export const TEST_CUDA_GRAPHS_ENV = 'SINKSTREAM_TEST_CUDA_GRAPHS';

export function testCudaGraphs(): 'auto' | 'on' | 'off' {
  const value = process.env[TEST_CUDA_GRAPHS_ENV] ?? 'auto';
  if (value !== 'auto' && value !== 'on' && value !== 'off') throw new Error(`${TEST_CUDA_GRAPHS_ENV}=${value}: expected auto, on or off`);
  return value;
}
