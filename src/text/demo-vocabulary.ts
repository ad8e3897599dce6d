/**
 * The built-in demo vocabulary: token id = index in this list. The bundled demo model was trained
 * with exactly this list in exactly this order; changing it changes every token id.
 */
export const DEMO_VOCABULARY: readonly string[] = Object.freeze([
  // articles and connectives
  'a', 'an', 'and', 'on', 'the', 'with', 'in', 'over',
  // motion
  'bouncing', 'moving', 'sliding', 'floating',
  // colours
  'red', 'green', 'blue', 'yellow', 'orange', 'purple', 'cyan', 'magenta', 'white', 'black', 'gray', 'pink', 'brown',
  // modifiers
  'dark', 'light', 'bright',
  // shapes
  'circle', 'square', 'triangle', 'ring', 'cross', 'diamond',
  // scene and size
  'background', 'small', 'large', 'big',
]);
