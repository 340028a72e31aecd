'use strict';
// Next's preloadEntriesOnStart under the hook (KNEXT_NEXT_PRELOAD), against the real Next 16
// standalone fixture, where it is on by default. What node has loaded is read through a second
// --require (fixtures/dump-modules.cjs) that writes require.cache's paths on SIGUSR2.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./helpers.cjs');

const T = { timeout: 20000 };
const DUMP_HOOK = path.join(__dirname, 'fixtures', 'dump-modules.cjs');
const APP_DIR = path.dirname(h.NEXT_SERVER);

function routeCount() {
  const read = (f) => Object.keys(JSON.parse(fs.readFileSync(path.join(APP_DIR, '.next', 'server', f), 'utf8')));
  return read('app-paths-manifest.json').length + read('pages-manifest.json').length;
}

async function start(t, mode) {
  assert.ok(fs.existsSync(h.NEXT_SERVER), `the fixture is built (${h.NEXT_SERVER})`);
  const PORT = await h.freePort();
  const dump = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'knext-preload-')), 'modules.json');
  const env = { PORT: String(PORT), KNEXT_TEST_DUMP: dump, NODE_OPTIONS: `--require ${h.HOOK} --require ${DUMP_HOOK}` };
  if (mode) env.KNEXT_NEXT_PRELOAD = mode;
  const a = h.startApp({ script: h.NEXT_SERVER, cwd: APP_DIR, env });
  t.after(() => { a.kill(); fs.rmSync(path.dirname(dump), { recursive: true, force: true }); });
  async function loaded() {
    fs.rmSync(dump, { force: true });
    a.child.kill('SIGUSR2');
    await h.waitUntil(() => fs.existsSync(dump), 5000);
    return JSON.parse(fs.readFileSync(dump, 'utf8'));
  }
  return { ...a, PORT, loaded };
}

// The module of a route nobody requested: its page entry in the build.
const LIST_PAGE = path.join(APP_DIR, '.next', 'server', 'app', 'list', 'page.js');

test('defer: the first request is served without loading the other routes; "preload" loads them all', T, async (t) => {
  assert.ok(fs.existsSync(LIST_PAGE), `premise: ${LIST_PAGE} is a page entry of the build`);
  const a = await start(t, 'defer');
  await a.waitFor('next-preload', 8000);
  assert.deepEqual(a.messages.filter((m) => m.type === 'next-preload').map((m) => m.state), ['deferred']);
  const l = await a.waitFor('listening', 8000);
  assert.equal((await h.get(l.port, '/dynamic')).status, 200);
  assert.ok(!(await a.loaded()).includes(LIST_PAGE), 'an unrequested route is not loaded before "preload"');

  a.send({ type: 'open' });
  await a.waitFor('opened');
  a.send({ type: 'preload' });
  const done = await h.waitUntil(() => a.messages.find((m) => m.type === 'next-preload' && m.state === 'done'), 10000);
  assert.equal(done.pages, routeCount());
  assert.ok((await a.loaded()).includes(LIST_PAGE), 'after "preload" every route is loaded');
  const list = await h.get(a.PORT, '/list');
  assert.equal(list.status, 200);
  assert.equal(a.messages.filter((m) => m.type === 'error').length, 0, JSON.stringify(a.messages));
});

test('defer: a user request in flight holds the preload back until it ends', T, async (t) => {
  const a = await start(t, 'defer');
  await a.waitFor('next-preload', 8000);
  await a.waitFor('listening', 8000);
  a.send({ type: 'open' });
  await a.waitFor('opened');
  const slow = h.get(a.PORT, '/slow'); // waits ~300 ms inside the render
  await new Promise((r) => setTimeout(r, 100));
  a.send({ type: 'preload' });
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(!(await a.loaded()).includes(LIST_PAGE), 'nothing preloaded while /slow is in flight');
  assert.equal((await slow).status, 200);
  await h.waitUntil(() => a.messages.find((m) => m.type === 'next-preload' && m.state === 'done'), 10000);
  assert.ok((await a.loaded()).includes(LIST_PAGE));
});

test('next (or no KNEXT_NEXT_PRELOAD): Next preloads every route at start, as it ships', T, async (t) => {
  for (const mode of ['next', undefined]) {
    const a = await start(t, mode);
    const l = await a.waitFor('listening', 8000);
    assert.equal((await h.get(l.port, '/dynamic')).status, 200);
    await h.waitUntil(async () => (await a.loaded()).includes(LIST_PAGE), 8000, 200);
    assert.equal(a.messages.filter((m) => m.type === 'next-preload').length, 0, JSON.stringify(a.messages));
    a.kill();
    await a.exited;
  }
});

test('defer: the control channel closing before "preload" runs the preload anyway', T, async (t) => {
  const a = await start(t, 'defer');
  await a.waitFor('next-preload', 8000);
  const l = await a.waitFor('listening', 8000);
  a.endControl(); // fail-open: PORT opens, and the held-back preload runs
  await h.waitUntil(async () => (await h.probe(a.PORT)) === 'connected', 5000);
  assert.equal((await h.get(l.port, '/')).status, 200);
  await h.waitUntil(async () => (await a.loaded()).includes(LIST_PAGE), 8000, 200);
});
