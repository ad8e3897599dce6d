/**
 * ffmpeg killed mid-stream: the encoder is restarted, every viewer gets the new init segment and
 * resumes at a keyframe; past serve.encoderRestarts the stream fails and viewers are told why.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { childBoxes, parseMoof, readBoxHeader } from '../../src/encode/mp4-boxes.js';
import { startTestServer, TestClient, type Received } from './helpers/server-fixture.js';
import type { SinkstreamServer } from '../../src/serve/server.js';

const isBinary = (r: Received) => r.kind === 'binary';
const binary = async (c: TestClient) => ((await c.next(isBinary, 30_000)) as { data: Buffer }).data;
const startsWithKeyframe = (f: Buffer) => parseMoof(f, readBoxHeader(f, 0)!).startsWithKeyframe;

async function createWatched(server: SinkstreamServer): Promise<{ a: TestClient; id: string }> {
  const a = await TestClient.connect(server);
  a.send({ type: 'create', prompt: 'a red circle bouncing on a black background', req: 1 });
  const id = (await a.nextOf('created', 30_000)).stream.id;
  await a.nextOf('init', 30_000);
  await binary(a);
  return { a, id };
}

async function killEncoder(server: SinkstreamServer, id: string): Promise<number> {
  const pid = server.streams.get(id)!.encoderPid!;
  process.kill(pid, 'SIGKILL');
  return pid;
}

test('ffmpeg killed mid-stream: viewers get a new init segment and resume at a keyframe', async () => {
  const server = await startTestServer();
  try {
    const { a, id } = await createWatched(server);
    for (let i = 0; i < 4; i++) await binary(a);
    const b = await TestClient.connect(server);
    b.send({ type: 'watch', stream: id });
    await b.nextOf('init');
    await binary(b);
    assert.is(startsWithKeyframe(await binary(b)), true);

    const oldPid = await killEncoder(server, id);
    for (const viewer of [a, b]) {
      const announce = await viewer.nextOf('init', 30_000);
      assert.is(announce.reason, 'encoder-restart');
      const init = await binary(viewer);
      assert.equal(childBoxes(init, 0, init.length).map((x) => x.type), ['ftyp', 'moov']);
      assert.is(startsWithKeyframe(await binary(viewer)), true, 'resumes at a keyframe');
      for (let i = 0; i < 3; i++) await binary(viewer); // and goes on
    }
    assert.ok(server.streams.get(id)!.encoderPid !== oldPid);
    const figures = server.streams.get(id)!.figures();
    assert.is(figures.encoderRestarts, 1);
    const metrics = await (await fetch(`${server.url}metrics`)).text();
    assert.ok(/^sinkstream_encoder_restarts_total 1$/m.test(metrics));
    a.close();
    b.close();
  } finally {
    await server.close();
  }
});

test('past serve.encoderRestarts the stream fails and its viewers are told why', async () => {
  const server = await startTestServer({ serve: { encoderRestarts: 1 } });
  try {
    const { a, id } = await createWatched(server);
    await killEncoder(server, id);
    await a.nextOf('init', 30_000);
    await binary(a);
    await killEncoder(server, id);
    const ended = await a.nextOf('ended', 30_000);
    assert.is(ended.stream, id);
    assert.match(ended.reason, /failed: .*ffmpeg died 2 times/);
    assert.is(server.streams.get(id), undefined);
    a.close();
  } finally {
    await server.close();
  }
});

test.run();
