'use strict';
// knext-hook's traffic counts (--learn-paths, KNEXT_TRAFFIC=1): the pathname of each user
// request, bounded, reported on {"type":"traffic"} and when the app closes its server.
// Run: .deps/node/bin/node --test tests/hook/
const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const h = require('./helpers.cjs');

const T = { timeout: 20000 };

async function app(t, env) {
  const PORT = await h.freePort();
  const a = h.startApp({ env: { PORT: String(PORT), FIXTURE_SIGTERM: 'drain', ...env } });
  t.after(() => a.kill());
  await a.waitFor('listening');
  a.send({ type: 'open' });
  await a.waitFor('opened');
  return { ...a, PORT };
}

function request(port, method, urlPath, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end('a body that is never counted');
  });
}

// The next "traffic" message after the ones already seen.
async function traffic(a) {
  const seen = a.messages.filter((m) => m.type === 'traffic').length;
  a.send({ type: 'traffic' });
  await h.waitUntil(() => a.messages.filter((m) => m.type === 'traffic').length > seen);
  return a.messages.filter((m) => m.type === 'traffic')[seen];
}

test('counts user GETs by pathname only; warm-ups, probes, other methods and /_next/ are left out', T, async (t) => {
  const a = await app(t, { KNEXT_TRAFFIC: '1' });
  await request(a.PORT, 'GET', '/posts/hello?token=secret#x');
  await request(a.PORT, 'GET', '/posts/hello');
  await request(a.PORT, 'HEAD', '/posts/hello');
  await request(a.PORT, 'GET', '/', { cookie: 'session=secret' });
  await request(a.PORT, 'POST', '/form');
  await request(a.PORT, 'GET', '/_next/static/chunks/app.js');
  await request(a.PORT, 'GET', '/warm', { 'x-knext-warmup': '1' });
  await request(a.PORT, 'GET', '/healthz', { 'k-kubelet-probe': 'queue' });
  await request(a.PORT, 'GET', '/healthz', { 'user-agent': 'kube-probe/1.30' });
  await request(a.PORT, 'GET', '/healthz', { 'user-agent': 'Knative-Queue-Proxy-Probe' });
  const m = await traffic(a);
  assert.deepEqual(m.paths, { '/posts/hello': 3, '/': 1 });
  assert.ok(!JSON.stringify(m).includes('secret'), 'no query, header or body value is reported');
  // A report starts the count again.
  await request(a.PORT, 'GET', '/');
  assert.deepEqual((await traffic(a)).paths, { '/': 1 });
  assert.deepEqual((await traffic(a)).paths, {});
});

test('at most 200 distinct paths of at most 256 bytes; one message well under 64 KiB', T, async (t) => {
  const a = await app(t, { KNEXT_TRAFFIC: '1' });
  const long = '/' + 'a'.repeat(256);  // 257 bytes: dropped
  const longest = '/' + 'b'.repeat(255);
  await request(a.PORT, 'GET', long);
  await request(a.PORT, 'GET', longest);
  await request(a.PORT, 'GET', '/quo"te');
  for (let i = 0; i < 230; i++) await request(a.PORT, 'GET', `/p${i}/` + 'c'.repeat(240));
  await request(a.PORT, 'GET', longest);  // a path already counted still counts
  const m = await traffic(a);
  const paths = Object.keys(m.paths);
  assert.equal(paths.length, 200);
  assert.equal(m.paths[longest], 2);
  assert.ok(!(long in m.paths));
  assert.ok(!paths.some((p) => p.includes('"')));
  assert.ok(paths.every((p) => Buffer.byteLength(p) <= 256));
  assert.ok(!(`/p229/${'c'.repeat(240)}` in m.paths), 'new paths past 200 are dropped');
  assert.ok(Buffer.byteLength(JSON.stringify(m)) < 60 * 1024);
});

test('reports on its own when the app closes its server (SIGTERM), before node exits', T, async (t) => {
  const a = await app(t, { KNEXT_TRAFFIC: '1' });
  await request(a.PORT, 'GET', '/list');
  await request(a.PORT, 'GET', '/list');
  a.child.kill('SIGTERM');
  await h.withTimeout(a.exited, 10000, 'exit after SIGTERM');
  const reports = a.messages.filter((m) => m.type === 'traffic');
  assert.equal(reports.length, 1);
  assert.deepEqual(reports[0].paths, { '/list': 2 });
});

test('without KNEXT_TRAFFIC nothing is counted or sent', T, async (t) => {
  const a = await app(t, {});
  await request(a.PORT, 'GET', '/list');
  a.send({ type: 'traffic' });
  a.child.kill('SIGTERM');
  await h.withTimeout(a.exited, 10000, 'exit after SIGTERM');
  assert.equal(a.messages.filter((m) => m.type === 'traffic').length, 0);
  assert.equal(a.messages.filter((m) => m.type === 'error').length, 0);
});
