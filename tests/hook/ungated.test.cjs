'use strict';
// knext-hook with servers it cannot hold back: it reports "ungated" (why), the app's own listen
// runs unchanged and PORT serves at once. Run: .deps/node/bin/node --test tests/hook/
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const h = require('./helpers.cjs');

const T = { timeout: 15000 };
const SERVERS = path.join(h.ROOT, 'tests', 'fixtures', 'servers');

async function app(t, script) {
  const PORT = await h.freePort();
  const a = h.startApp({ script, env: { PORT: String(PORT) } });
  t.after(() => a.kill());
  return { ...a, PORT };
}

test('a net.Server on PORT: "ungated" with the reason, PORT serves', T, async (t) => {
  const a = await app(t, path.join(SERVERS, 'net-server.cjs'));
  const m = await a.waitFor('ungated');
  assert.equal(m.port, a.PORT);
  assert.match(m.message, /net\.Server that is not an http\/https server/);
  await h.waitUntil(() => a.output().includes('net-server listening'));
  const r = await h.get(a.PORT, '/');
  assert.equal(r.status, 200);
  assert.equal(r.body, 'net-server ok\n');
  assert.equal(a.messages.filter((x) => x.type === 'listening').length, 0);
});

test('a cluster app: the primary reports "ungated", the workers serve PORT', T, async (t) => {
  const a = await app(t, path.join(SERVERS, 'cluster-server.cjs'));
  const m = await a.waitFor('ungated');
  assert.match(m.message, /cluster primary/);
  await h.waitUntil(() => h.probe(a.PORT).then((v) => v === 'connected'));
  const r = await h.get(a.PORT, '/');
  assert.equal(r.status, 200);
  assert.match(r.body, /^cluster worker \d+/);
  assert.equal(a.messages.filter((x) => x.type === 'ungated').length, 1);
});
