'use strict';
// knext-hook against a plain http.Server (tests/hook/fixtures/plain-server.cjs).
// Run: .deps/node/bin/node --test tests/hook/
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const net = require('node:net');
const h = require('./helpers.cjs');

const T = { timeout: 10000 };

async function app(t, env = {}, opts = {}) {
  const PORT = await h.freePort();
  const a = h.startApp({ ...opts, env: { PORT: String(PORT), ...env } });
  t.after(() => a.kill());
  return { ...a, PORT };
}

test('handoff: internal first, PORT refused until "open", then the same server on PORT', T, async (t) => {
  const a = await app(t);
  const hello = await a.waitFor('hello');
  assert.equal(hello.pid, a.child.pid);
  assert.equal(hello.node, process.version);
  assert.equal(hello.gate, 'handoff');

  const l = await a.waitFor('listening');
  assert.equal(l.host, '127.0.0.1');
  assert.notEqual(l.port, a.PORT);
  assert.equal(l.publicPort, a.PORT);
  assert.equal(l.publicHost, '127.0.0.1');
  assert.equal(l.redirected, true);

  const first = await h.getJson(l.port, '/');
  assert.equal(first.status, 200);
  assert.equal(first.json.pid, a.child.pid);
  assert.equal(await h.probe(a.PORT), 'ECONNREFUSED');
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(await h.probe(a.PORT), 'ECONNREFUSED', 'PORT must stay closed without "open"');
  assert.equal(a.messages.some((m) => m.type === 'opened'), false);

  a.send({ type: 'open' });
  const opened = await a.waitFor('opened');
  assert.equal(opened.port, a.PORT);
  const pub = await h.getJson(a.PORT, '/');
  assert.equal(pub.status, 200);
  assert.equal(pub.json.id, first.json.id, 'same http.Server instance');
  assert.equal(pub.json.count, first.json.count + 1, 'same per-server counter');
  assert.equal(pub.json.port, a.PORT);
  // the internal address keeps working (launcher warm-up / self-fetches)
  assert.equal((await h.getJson(l.port, '/')).json.count, first.json.count + 2);
  assert.equal(a.messages.filter((m) => m.type === 'error').length, 0, JSON.stringify(a.messages));
});

for (const shape of ['port-cb', 'options', 'string']) {
  test(`listen call shape "${shape}" is redirected and opened`, T, async (t) => {
    const a = await app(t, { FIXTURE_SHAPE: shape });
    const l = await a.waitFor('listening');
    assert.equal(l.redirected, true);
    assert.notEqual(l.port, a.PORT);
    assert.equal(l.publicHost, shape === 'port-cb' ? '' : '127.0.0.1');
    assert.equal(await h.probe(a.PORT), 'ECONNREFUSED');
    // the app's listen callback ran, on the internal address
    await h.waitUntil(() => a.output().includes(`"port":${l.port}`));
    a.send({ type: 'open' });
    await a.waitFor('opened');
    const r = await h.getJson(a.PORT, '/');
    assert.equal(r.status, 200);
    assert.equal(r.json.pid, a.child.pid);
  });
}

test('without KNEXT_CONTROL_FD the hook changes nothing', T, async (t) => {
  const a = await app(t, {}, { control: false });
  await h.waitUntil(() => a.output().includes('fixture listening'));
  assert.match(a.output(), new RegExp(`"port":${a.PORT}\\b`));
  const r = await h.getJson(a.PORT, '/env');
  assert.equal(r.status, 200);
  assert.equal(r.json.count, 1);
  assert.equal(r.json.env.PORT, String(a.PORT));
});

// '99': not open; '1': stdio; '3' with fd 3 a regular file: not a socket or pipe.
for (const bad of ['abc', '99', '1', '', '3']) {
  test(`invalid KNEXT_CONTROL_FD=${JSON.stringify(bad)}: app listens on PORT directly`, T, async (t) => {
    let file;
    if (bad === '3') {
      file = fs.openSync(path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'knext-fd-')), 'f'), 'w+');
      t.after(() => fs.closeSync(file));
    }
    const a = await app(t, { KNEXT_CONTROL_FD: bad, KNEXT_GATE: 'handoff' }, { control: file === undefined ? false : file });
    await h.waitUntil(() => a.output().includes('fixture listening'));
    assert.match(a.output(), new RegExp(`"port":${a.PORT}\\b`));
    assert.equal((await h.get(a.PORT, '/')).status, 200);
    if (file !== undefined) assert.equal(fs.fstatSync(file).size, 0, 'nothing written to a non-socket fd 3');
  });
}

test('gate other than handoff: no redirect, "listening" still reported', T, async (t) => {
  const a = await app(t, { KNEXT_GATE: 'proxy' });
  const hello = await a.waitFor('hello');
  assert.equal(hello.gate, 'none');
  const l = await a.waitFor('listening');
  assert.equal(l.port, a.PORT);
  assert.equal(l.redirected, false);
  assert.equal((await h.get(a.PORT, '/')).status, 200);
});

test('EOF on the control channel before "open": PORT opens anyway', T, async (t) => {
  const a = await app(t);
  const l = await a.waitFor('listening');
  assert.equal(await h.probe(a.PORT), 'ECONNREFUSED');
  a.endControl();
  await h.waitUntil(async () => (await h.probe(a.PORT)) === 'connected');
  const r = await h.getJson(a.PORT, '/');
  assert.equal(r.status, 200);
  assert.equal(r.json.id, (await h.getJson(l.port, '/')).json.id);
});

test('EOF before the app listens: the app listens on PORT itself', T, async (t) => {
  const a = await app(t, { FIXTURE_DELAY_MS: '300' });
  await a.waitFor('hello');
  a.endControl();
  await h.waitUntil(() => a.output().includes('fixture listening'));
  assert.match(a.output(), new RegExp(`"port":${a.PORT}\\b`));
  assert.equal((await h.get(a.PORT, '/')).status, 200);
});

test('"open" before the app listens: no redirect, "listening" and "opened" reported', T, async (t) => {
  const a = await app(t, { FIXTURE_DELAY_MS: '300' });
  await a.waitFor('hello');
  a.send({ type: 'open' });
  const l = await a.waitFor('listening');
  assert.equal(l.redirected, false);
  assert.equal(l.port, a.PORT);
  const o = await a.waitFor('opened');
  assert.equal(o.port, a.PORT);
  assert.equal((await h.get(a.PORT, '/')).status, 200);
});

test('hook failure (simulated throw): "error" sent and the app still listens on PORT', T, async (t) => {
  const a = await app(t, { KNEXT_HOOK_TEST_FAIL: 'throw' });
  const e = await a.waitFor('error');
  assert.match(e.message, /simulated hook failure/);
  const l = await a.waitFor('listening');
  assert.equal(l.redirected, false);
  assert.equal(l.port, a.PORT);
  const r = await h.getJson(a.PORT, '/');
  assert.equal(r.status, 200);
  // the app's listen callback ran exactly once
  assert.equal(a.output().split('fixture listening').length - 1, 1);
});

test('internal listen fails (port busy): "error" sent, app listens on PORT, its error handler untouched', T, async (t) => {
  const busy = net.createServer();
  await new Promise((r) => busy.listen(0, '127.0.0.1', r));
  t.after(() => busy.close());
  const a = await app(t, { KNEXT_HOOK_TEST_FAIL: `listen:${busy.address().port}` });
  const e = await a.waitFor('error');
  assert.match(e.message, /EADDRINUSE/);
  const l = await a.waitFor('listening');
  assert.equal(l.port, a.PORT);
  assert.equal((await h.get(a.PORT, '/')).status, 200);
  assert.doesNotMatch(a.output(), /fixture server error/);
  assert.equal(a.output().split('fixture listening').length - 1, 1);
});

test('public listen fails on "open" (PORT taken): app gets the error as it would without the hook', T, async (t) => {
  const PORT = await h.freePort();
  const a = h.startApp({ env: { PORT: String(PORT) } });
  t.after(() => a.kill());
  await a.waitFor('listening');
  const squatter = net.createServer();
  await new Promise((r) => squatter.listen(PORT, '127.0.0.1', r));
  t.after(() => squatter.close());
  a.send({ type: 'open' });
  const e = await a.waitFor('error');
  assert.match(e.message, /public listen failed: EADDRINUSE/);
  const ex = await h.withTimeout(a.exited, 5000, 'exit');
  assert.equal(ex.code, 1);
  assert.match(a.output(), /fixture server error: EADDRINUSE/);
});

test("the app's listen on another port is untouched", T, async (t) => {
  const extraPort = await h.freePort();
  const a = await app(t, { FIXTURE_EXTRA_PORT: String(extraPort) });
  const l = await a.waitFor('listening');
  await h.waitUntil(() => a.output().includes('extra listening'));
  const extra = await h.getJson(extraPort, '/');
  assert.equal(extra.status, 200);
  assert.match(extra.json.id, /^extra-/);
  assert.equal(await h.probe(a.PORT), 'ECONNREFUSED');
  assert.match((await h.getJson(l.port, '/')).json.id, /^main-/);
  assert.equal(a.messages.filter((m) => m.type === 'listening').length, 1);
});

test('"flush" writes the compile cache and answers "flushed"', T, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'knext-cc-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const files = () => fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile());
  const a = await app(t, { NODE_COMPILE_CACHE: dir });
  await a.waitFor('listening');
  assert.equal(files().length, 0, 'node writes the cache only at exit or on flush');
  a.send({ type: 'flush' });
  const f = await a.waitFor('flushed');
  assert.equal(f.ok, true, JSON.stringify(f));
  assert.equal(path.resolve(f.dir).startsWith(path.resolve(dir)), true, f.dir);
  assert.ok(files().length > 0, 'cache entries after flush');
  assert.equal(a.child.exitCode, null, 'still running');
});

test('messages: bare words work, garbage gets an "error" reply, nothing breaks', T, async (t) => {
  const a = await app(t);
  await a.waitFor('listening');
  a.send('{not json');
  a.send({ type: 'bogus' });
  await h.waitUntil(() => a.messages.filter((m) => m.type === 'error').length === 2);
  a.send('open');
  await a.waitFor('opened');
  assert.equal((await h.get(a.PORT, '/')).status, 200);
});

test('control fd and KNEXT_CONTROL_FD do not leak into child processes', T, async (t) => {
  const a = await app(t);
  const l = await a.waitFor('listening');
  const r = await h.getJson(l.port, '/child');
  assert.match(r.json.fd3, /^socket:\[\d+\]$/, 'control socket is fd 3 in the app');
  assert.match(r.json.child, /ENV=unset/);
  assert.equal(r.json.child.includes(r.json.fd3), false, r.json.child);
  assert.equal((await h.getJson(l.port, '/env')).json.env.KNEXT_CONTROL_FD, undefined);
});

test("Next-style __NEXT_PRIVATE_ORIGIN is pointed at the loopback internal address", T, async (t) => {
  // 127.0.0.2 is loopback too; the app binds it, the internal listener is on 127.0.0.1.
  const a = await app(t, { HOSTNAME: '127.0.0.2', FIXTURE_NEXT_ORIGIN: '1' });
  const l = await a.waitFor('listening');
  assert.equal(l.publicHost, '127.0.0.2');
  const env = (await h.getJson(l.port, '/env')).json.env;
  assert.equal(env.__NEXT_PRIVATE_ORIGIN, `http://127.0.0.1:${l.port}`);
  assert.equal(env.PORT, String(l.port));
  a.send({ type: 'open' });
  await a.waitFor('opened');
  assert.equal(await h.probe(a.PORT, '127.0.0.1'), 'ECONNREFUSED', 'public listener binds the app host only');
  assert.equal((await h.get(a.PORT, '/', '127.0.0.2')).status, 200);
});

// SIGTERM with an idle keep-alive connection open on the public port. The fixture keeps idle
// connections 60 s (FIXTURE_KEEPALIVE_MS), so a connection that held node up would hold it far
// past the 10 s hang bound here: no timing of the exit is needed to tell.
async function sigterm(t, env, { control = true, openFirst = true } = {}) {
  const PORT = await h.freePort();
  const a = h.startApp({ env: { PORT: String(PORT), FIXTURE_KEEPALIVE_MS: '60000', ...env }, control });
  t.after(() => a.kill());
  if (control) {
    await a.waitFor('listening');
    if (openFirst) {
      a.send({ type: 'open' });
      await a.waitFor('opened');
    }
  } else {
    await h.waitUntil(() => a.output().includes('fixture listening'));
  }
  // an idle keep-alive connection on the public port must not hold node up
  const ka = net.connect({ host: '127.0.0.1', port: PORT });
  await new Promise((r, j) => { ka.on('connect', r); ka.on('error', j); });
  ka.write(`GET / HTTP/1.1\r\nHost: x\r\n\r\n`);
  await new Promise((r) => ka.once('data', r));
  ka.on('error', () => {});
  a.child.kill('SIGTERM');
  const ex = await h.withTimeout(a.exited, 10000, 'exit after SIGTERM');
  ka.destroy();
  return ex;
}

// Killed by the signal itself (signal SIGTERM, no exit code): the hook installed no SIGTERM
// handler of its own that could delay or change the exit.
test('SIGTERM, no handler in the app: dies of SIGTERM (its default action), as without the hook', { timeout: 25000 }, async (t) => {
  const withHook = await sigterm(t, {});
  const without = await sigterm(t, {}, { control: false });
  assert.deepEqual([withHook.code, withHook.signal], [without.code, without.signal]);
  assert.equal(withHook.signal, 'SIGTERM');
});

test('SIGTERM, app closes its server: node exits by itself (code 0), as without the hook', { timeout: 25000 }, async (t) => {
  const withHook = await sigterm(t, { FIXTURE_SIGTERM: 'close' });
  const without = await sigterm(t, { FIXTURE_SIGTERM: 'close' }, { control: false });
  assert.deepEqual([withHook.code, withHook.signal], [0, null]);
  assert.deepEqual([without.code, without.signal], [0, null]);
});

test('server.close(): public port stops accepting at once; close waits for in-flight public requests', T, async (t) => {
  const a = await app(t, { FIXTURE_SIGTERM: 'drain' });
  await a.waitFor('listening');
  a.send({ type: 'open' });
  await a.waitFor('opened');
  const slow = h.getJson(a.PORT, '/slow');
  await new Promise((r) => setTimeout(r, 100)); // request in flight
  a.child.kill('SIGTERM');
  await h.waitUntil(() => a.output().includes('closing'));
  assert.equal(await h.probe(a.PORT), 'ECONNREFUSED', 'public listener closed with the server');
  const r = await slow;
  assert.equal(r.status, 200);
  assert.equal(a.output().includes('drained'), false, 'close() callback waited for the public request');
  const ex = await h.withTimeout(a.exited, 3000, 'exit');
  assert.equal(ex.code, 0);
  assert.match(a.output(), /drained/);
});

// Connections the kernel accepted but node had not yet taken off the accept queue when the app
// closed its server: closing the public listener at once would reset them, their requests lost.
test('server.close() with connections in the accept queue: every connected request is answered', T, async (t) => {
  const a = await app(t, { FIXTURE_SIGTERM: 'drain' });
  await a.waitFor('listening');
  a.send({ type: 'open' });
  await a.waitFor('opened');
  const busy = h.getJson(a.PORT, '/busy'); // node blocks: the connections below wait in the queue
  await new Promise((r) => setTimeout(r, 50));
  const N = 60;
  const outcomes = [];
  const connectedAll = [];
  const sockets = [];
  for (let i = 0; i < N; i++) {
    outcomes.push(new Promise((resolve) => {
      const s = net.connect(a.PORT, '127.0.0.1');
      sockets.push(s);
      let data = '';
      let connected = false;
      connectedAll.push(new Promise((ok) => s.once('connect', ok).once('error', ok)));
      s.on('connect', () => { connected = true; s.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'); });
      s.on('data', (d) => { data += d; });
      s.on('error', (e) => resolve(connected ? 'lost:' + e.code : 'refused'));
      s.on('close', () => resolve(data.startsWith('HTTP/1.1 200') ? 'ok' : connected ? 'lost:empty' : 'refused'));
    }));
  }
  await Promise.all(connectedAll); // the kernel completed every connect; node has accepted none
  a.child.kill('SIGTERM'); // handled once /busy ends, with the connections still queued
  t.after(() => sockets.forEach((s) => s.destroy()));
  const got = await Promise.all(outcomes);
  const lost = got.filter((o) => o.startsWith('lost'));
  assert.deepEqual(lost, [], `${lost.length} of ${N} connected requests lost: ${JSON.stringify(got)}`);
  assert.equal(got.filter((o) => o === 'ok').length, N, JSON.stringify(got));
  assert.equal((await busy).status, 200);
  const ex = await h.withTimeout(a.exited, 5000, 'exit');
  assert.equal(ex.code, 0);
});

// A keep-alive client (queue-proxy keeps its connections): node's own close() leaves a connection
// that is busy at that moment open after its response until keepAliveTimeout (node's default
// 5 s; the fixture's 60 s here, so the two cases differ by far more than any noise), so node exits
// that much late. With the hook the response in flight says "Connection: close", a request that
// arrives later on a kept connection too, and node exits once they are answered.
async function keepAliveDrain(t, opts) {
  const a = await app(t, { FIXTURE_SIGTERM: 'drain', FIXTURE_KEEPALIVE_MS: '60000' }, opts);
  if (opts.control !== false) {
    await a.waitFor('listening');
    a.send({ type: 'open' });
    await a.waitFor('opened');
  } else {
    await h.waitUntil(() => a.output().includes('fixture listening'));
  }
  const http = require('node:http');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
  t.after(() => agent.destroy());
  const get = (p) => new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: a.PORT, path: p, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, connection: res.headers.connection }));
    }).on('error', reject);
  });
  await Promise.all([get('/'), get('/')]); // two kept connections
  const slow = get('/slow');
  await new Promise((r) => setTimeout(r, 100)); // in flight on one of them
  a.child.kill('SIGTERM');
  await h.waitUntil(() => a.output().includes('closing'));
  const r = await slow;
  return { ...r, a, agent };
}

test('drain: a keep-alive response in flight at close() ends its connection; node exits at once', T, async (t) => {
  const r = await keepAliveDrain(t, {});
  assert.equal(r.status, 200);
  assert.equal(r.connection, 'close');
  // With the client's connections still open: nothing of theirs holds node (60 s keep-alive).
  const ex = await h.withTimeout(r.a.exited, 8000, 'exit while the client still holds its connections');
  assert.equal(ex.code, 0);
});

test('drain: without the hook node keeps that connection for keepAliveTimeout (the case above)', T, async (t) => {
  const r = await keepAliveDrain(t, { control: false, hook: false });
  assert.equal(r.status, 200);
  assert.equal(r.connection, 'keep-alive');
  // Still running a second after the answer (the hooked node above exits at once) ...
  await new Promise((res) => setTimeout(res, 1000));
  assert.equal(r.a.child.exitCode, null, 'node exited with the kept connection still open');
  assert.equal(r.a.child.signalCode, null);
  // ... held by that connection: once the client closes it, node drains and exits by itself.
  r.agent.destroy();
  const ex = await h.withTimeout(r.a.exited, 8000, 'exit after the client closed its connections');
  assert.equal(ex.code, 0);
  assert.match(r.a.output(), /drained/);
});
