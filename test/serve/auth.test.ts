import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { IncomingMessage } from 'node:http';
import { hostAllowed, isLoopbackHost, originAllowed, tokenMatches, tokenOf } from '../../src/serve/auth.js';

const req = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;

test('loopback hosts', () => {
  for (const h of ['127.0.0.1', '127.8.9.10', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1']) assert.ok(isLoopbackHost(h), h);
  for (const h of ['0.0.0.0', '::', '192.168.1.2', '10.0.0.1', 'example.com', 'localhost.evil.com', '128.0.0.1']) assert.not.ok(isLoopbackHost(h), h);
});

test('token: none required, match, mismatch, missing', () => {
  assert.ok(tokenMatches(undefined, null));
  assert.ok(tokenMatches('secret-123', 'secret-123'));
  assert.not.ok(tokenMatches('secret-123', 'secret-124'));
  assert.not.ok(tokenMatches('secret-123', 'secret-1234'));
  assert.not.ok(tokenMatches('secret-123', null));
});

test('token is read from Authorization, X-Sinkstream-Token, and (upgrades only) the query', () => {
  const url = new URL('http://x/ws?token=from-query');
  assert.is(tokenOf(req({ authorization: 'Bearer abc' }), url, true), 'abc');
  assert.is(tokenOf(req({ 'x-sinkstream-token': 'def' }), url, false), 'def');
  assert.is(tokenOf(req({}), url, true), 'from-query');
  assert.is(tokenOf(req({}), url, false), null);
});

test('origin: none (not a browser), same origin, allow-listed, others refused', () => {
  const policy = { token: 't', origins: ['https://studio.example'] };
  assert.ok(originAllowed(req({ host: '127.0.0.1:8080' }), policy));
  assert.ok(originAllowed(req({ host: '127.0.0.1:8080', origin: 'http://127.0.0.1:8080' }), policy));
  assert.ok(originAllowed(req({ host: '127.0.0.1:8080', origin: 'https://studio.example' }), policy));
  assert.not.ok(originAllowed(req({ host: '127.0.0.1:8080', origin: 'http://127.0.0.1:9090' }), policy));
  assert.not.ok(originAllowed(req({ host: '127.0.0.1:8080', origin: 'null' }), policy));
  assert.not.ok(originAllowed(req({ host: '127.0.0.1:8080', origin: 'file://' }), policy));
});

test('without a token, Host must be a loopback name (DNS rebinding guard)', () => {
  const open = { token: undefined, origins: [] };
  assert.ok(hostAllowed(req({ host: '127.0.0.1:8080' }), open));
  assert.ok(hostAllowed(req({ host: 'localhost:8080' }), open));
  assert.ok(hostAllowed(req({ host: '[::1]:8080' }), open));
  assert.not.ok(hostAllowed(req({ host: 'attacker.example:8080' }), open));
  assert.not.ok(hostAllowed(req({}), open));
  assert.ok(hostAllowed(req({ host: 'attacker.example:8080' }), { token: 't', origins: [] }));
});

test.run();
