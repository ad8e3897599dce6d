/**
 * The loop these suites were written against, whatever configs/default.yaml says today: a 2-layer synthetic model on
 * one thread, opened from noise without guidance, every block (the first too) denoised over the distilled 4 steps
 * from pure noise. A suite adds what it needs (`model.arch.prediction=flow`, `decoder.kind=none`) after it.
 */
export const tinyLoop: readonly string[] = [
  'model.weights=synthetic',
  'model.arch.layers=2',
  'engine.threads=1',
  'generation.opening=noise',
  'generation.openingGuidance=null',
  'generation.openingSteps=null',
  'generation.steps=[1000,750,500,250]',
  'generation.blockStart=noise',
];
