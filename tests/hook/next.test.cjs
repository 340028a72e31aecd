'use strict';
// knext-hook against the real Next 16 standalone server (tests/fixtures/next-app). scripts/setup.sh
// builds the fixture before any suite runs: without it every test here fails, saying so.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./helpers.cjs');

const T = { timeout: 10000 };

async function next(t, opts = {}) {
  assert.ok(fs.existsSync(h.NEXT_SERVER), `no Next fixture at ${h.NEXT_SERVER}: run scripts/setup.sh`);
  const PORT = await h.freePort();
  const a = h.startApp({ ...opts, script: h.NEXT_SERVER, cwd: path.dirname(h.NEXT_SERVER), env: { PORT: String(PORT) } });
  t.after(() => a.kill());
  return { ...a, PORT };
}

test('Next standalone: warm on the internal address, PORT closed until "open", then served', T, async (t) => {
  const a = await next(t);
  const l = await a.waitFor('listening', 8000);
  assert.equal(l.redirected, true);
  assert.notEqual(l.port, a.PORT);
  const warm = await h.get(l.port, '/');
  assert.equal(warm.status, 200, warm.body.slice(0, 300));
  assert.match(warm.body, /<html/i);
  assert.equal(await h.probe(a.PORT), 'ECONNREFUSED');
  a.send({ type: 'open' });
  assert.equal((await a.waitFor('opened')).port, a.PORT);
  const pub = await h.get(a.PORT, '/');
  assert.equal(pub.status, 200);
  assert.match(pub.body, /<html/i);
  // Next's banner shows PORT, not the internal port server.address() gives it (runtime/README.md).
  assert.match(a.output(), new RegExp(`- Local: +http://[^\\s]+:${a.PORT}\\b`));
  assert.doesNotMatch(a.output(), new RegExp(`:${l.port}\\b`));
  assert.equal(a.messages.filter((m) => m.type === 'error').length, 0, JSON.stringify(a.messages));
});

async function termExit(t, control) {
  const a = await next(t, control ? {} : { control: false, hook: false });
  if (control) {
    await a.waitFor('listening', 8000);
    a.send({ type: 'open' });
    await a.waitFor('opened');
  } else {
    await h.waitUntil(async () => (await h.probe(a.PORT)) === 'connected', 8000);
  }
  assert.equal((await h.get(a.PORT, '/')).status, 200);
  a.child.kill('SIGTERM');
  // Only a hang bound: a connection the hook kept open would hold Next for keepAliveTimeout (5 s).
  return h.withTimeout(a.exited, 3000, 'exit after SIGTERM');
}

// Code 143 with no signal: Next's own SIGTERM handler ran its cleanup and exited 128+15 (a kill by
// the signal's default action would show signal SIGTERM instead).
test('Next standalone: SIGTERM exits with 143 (Next exits 128+15 itself), with the hook', T, async (t) => {
  const ex = await termExit(t, true);
  assert.deepEqual([ex.code, ex.signal], [143, null]);
});

test('Next standalone: SIGTERM without the hook gives the same status', T, async (t) => {
  const ex = await termExit(t, false);
  assert.deepEqual([ex.code, ex.signal], [143, null]);
});

test('Next standalone: SIGTERM waits for an in-flight request on the public port', T, async (t) => {
  const a = await next(t);
  await a.waitFor('listening', 8000);
  a.send({ type: 'open' });
  await a.waitFor('opened');
  const slow = h.get(a.PORT, '/slow'); // ~300 ms render
  await new Promise((r) => setTimeout(r, 100));
  a.child.kill('SIGTERM');
  const r = await slow; // Next's cleanup awaits server.close(): the request must finish, not be cut
  assert.equal(r.status, 200);
  assert.match(r.body, /knext fixture: slow/);
  const ex = await h.withTimeout(a.exited, 3000, 'exit after SIGTERM');
  assert.equal(ex.code, 143);
});
