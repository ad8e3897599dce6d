/**
 * Runs `run` with the named environment variables set (undefined: removed), then puts every one of them back as it
 * was, whatever `run` changed them to on the way. Native code and worker threads read the environment as it is when
 * they look (getenv, a worker's start), so tests that steer them through it restore it here.
 */
export async function withEnv<T>(values: Record<string, string | undefined>, run: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(values).map((name) => [name, process.env[name]]));
  const apply = (to: Record<string, string | undefined>) => {
    for (const [name, value] of Object.entries(to)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
  apply(values);
  try {
    return await run();
  } finally {
    apply(saved);
  }
}
