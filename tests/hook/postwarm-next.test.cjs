'use strict';
// runtime/knext-postwarm.cjs on the real Next 16 standalone server (tests/fixtures/next-app),
// driven through knext-hook.cjs as the launcher drives it. scripts/setup.sh builds the fixture
// before any suite runs: without it every test here fails, saying so.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./helpers.cjs');

const T = { timeout: 60000 };
const ROUTES = ['/', '/dynamic', '/slow', '/list', '/api/health'];

// What differs between two renders of the fixture by design: times, pids, measured ms.
function normalize(body) {
  return body
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z/g, '<time>')
    .replace(/(pid (?:<!-- -->)?|pid \\",)\d+/g, '$1<pid>')
    .replace(/(took (?:<!-- -->)?|took \\",)\d+/g, '$1<ms>');
}

// One server run: every route on the internal address, then open + flush. Returns the
// normalized bodies, the "flushed" message and the output.
async function serve(t, env) {
  assert.ok(fs.existsSync(h.NEXT_SERVER), `no Next fixture at ${h.NEXT_SERVER}: run scripts/setup.sh`);
  const PORT = await h.freePort();
  const a = h.startApp({ script: h.NEXT_SERVER, cwd: path.dirname(h.NEXT_SERVER), env: { PORT: String(PORT), ...env } });
  t.after(() => a.kill());
  const l = await a.waitFor('listening', 15000);
  const pages = {};
  for (const r of ROUTES) {
    const res = await h.get(l.port, r);
    assert.equal(res.status, 200, `${r}: ${res.body.slice(0, 300)}`);
    pages[r] = normalize(res.body);
  }
  a.send({ type: 'open' });
  await a.waitFor('opened');
  assert.equal((await h.get(PORT, '/')).status, 200);
  a.send({ type: 'flush' });
  const flushed = await a.waitFor('flushed', 15000);
  a.kill();
  await a.exited;
  assert.equal(a.messages.filter((m) => m.type === 'error').length, 0, JSON.stringify(a.messages));
  return { pages, flushed, output: a.output() };
}

function tmpDir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'knext-pw-next-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('Next standalone under postwarm: every route 200 with the same HTML as without, first and second run', T, async (t) => {
  const dir = tmpDir(t);
  const base = await serve(t, {});
  assert.equal('postwarm' in base.flushed, false);
  const env = { KNEXT_COMPILE_CACHE: 'postwarm', KNEXT_POSTWARM_DIR: dir };

  const first = await serve(t, env);
  assert.deepEqual(first.pages, base.pages);
  const p1 = first.flushed.postwarm;
  assert.equal(p1.ok, true, JSON.stringify(p1));
  assert.equal(p1.hits, 0);
  assert.equal(p1.rejected, 0);
  assert.ok(p1.written > 100, JSON.stringify(p1)); // Next's server runtime is a few hundred CJS modules
  assert.ok(p1.bytes > 100000, JSON.stringify(p1));

  const second = await serve(t, env);
  assert.deepEqual(second.pages, base.pages);
  const p2 = second.flushed.postwarm;
  assert.equal(p2.ok, true, JSON.stringify(p2));
  assert.equal(p2.rejected, 0, JSON.stringify(p2));
  assert.equal(p2.misses, 0, JSON.stringify(p2));
  assert.equal(p2.hits, p1.written, JSON.stringify(p2));
  assert.equal(p2.written, 0);
  // Nothing of ours on the console (e.g. vm's ExperimentalWarning for import()).
  for (const out of [first.output, second.output]) assert.doesNotMatch(out, /Warning|knext-postwarm/);
});

test('Next standalone with NODE_COMPILE_CACHE and postwarm together: same HTML, postwarm hits on the second run', T, async (t) => {
  const dir = tmpDir(t);
  const base = await serve(t, {});
  const env = { KNEXT_COMPILE_CACHE: 'postwarm', KNEXT_POSTWARM_DIR: path.join(dir, 'pw'), NODE_COMPILE_CACHE: path.join(dir, 'node') };
  const first = await serve(t, env);
  assert.equal(first.flushed.ok, true, JSON.stringify(first.flushed));
  assert.equal(first.flushed.postwarm.ok, true);
  const second = await serve(t, env);
  assert.deepEqual(second.pages, base.pages);
  assert.equal(second.flushed.postwarm.rejected, 0);
  assert.equal(second.flushed.postwarm.misses, 0);
  // Two caches side by side in one tree would also be fine: node's is a directory, ours a file.
  assert.ok(fs.readdirSync(path.join(dir, 'pw')).some((f) => f.endsWith('.pack')));
});
