/**
 * The instance's name (serve.instanceId), which starts every id it hands out: by default the host
 * name and port made into an id (`GPU-Host.local:8080` -> `gpu-host-local-8080`), at most 24 characters.
 */
export function defaultInstanceId(hostname: string, port: number): string {
  const host = hostname
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  const suffix = `-${port}`;
  const kept = host.slice(0, 24 - suffix.length).replace(/-+$/, '');
  return `${kept || 'sinkstream'}${suffix}`;
}
