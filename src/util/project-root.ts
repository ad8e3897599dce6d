import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project's root (where configs/ and models/ live), from src/ or dist/src/. */
export const projectRoot: string = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (path.basename(dir) === 'src') return path.basename(path.dirname(dir)) === 'dist' ? path.dirname(path.dirname(dir)) : path.dirname(dir);
    dir = path.dirname(dir);
  }
  return process.cwd();
})();
