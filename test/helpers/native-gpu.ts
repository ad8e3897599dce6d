/** Why the GPU tests of this machine are skipped: '' where the CUDA addon loads and sees a device. */
import { loadNativeAddon } from '../../src/engine/native/addon-loader.js';

export function nativeGpuUnavailable(): string {
  try {
    const { probe } = loadNativeAddon();
    return probe.devices === 0 ? 'the addon loads but sees no CUDA device' : '';
  } catch (e) {
    return (e as Error).message.split('. ')[0];
  }
}
