/**
 * Model weights as the runtime holds them: float32 tensors under the canonical (original Wan)
 * key names of docs/model.md, e.g. `blocks.0.self_attn.q.weight` [dim, dim] (PyTorch Linear layout:
 * [out, in]).
 */
export interface WeightTensor {
  shape: number[];
  data: Float32Array;
}

export type ModelWeights = Map<string, WeightTensor>;
