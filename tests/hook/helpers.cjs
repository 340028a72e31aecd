'use strict';
// Shared helpers for the knext-hook tests (node:test, Node 24).
const { spawn } = require('node:child_process');
const net = require('node:net');
const http = require('node:http');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
// KNEXT_TEST_HOOK: run the suite against another copy of the hook (mutation checks).
const HOOK = process.env.KNEXT_TEST_HOOK || path.join(ROOT, 'runtime', 'knext-hook.cjs');
const PLAIN = path.join(__dirname, 'fixtures', 'plain-server.cjs');
const NEXT_SERVER = path.join(ROOT, 'tests', 'fixtures', 'next-app', '.next', 'standalone', 'server.js');

// A free port below the kernel's ephemeral range, as Knative's 8080 is: a PORT inside that range
// can be handed to the hook's own internal listen on port 0 (or to any client's connect).
function ephemeralLow() {
  try {
    return Number(require('fs').readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32768;
  } catch (_) {
    return 32768;
  }
}
function freePort(tries = 50) {
  const low = Math.max(ephemeralLow(), 12000);
  const port = 10000 + Math.floor(Math.random() * (low - 10000));
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', (e) => (tries > 1 ? freePort(tries - 1).then(resolve, reject) : reject(e)));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(port)));
  });
}

// Spawn node with the hook. opts: { script, env, hook (default true),
//   control: true (default: socketpair on fd 3) | false (no fd 3, no KNEXT_*) | <fd number> (given fd as fd 3, no KNEXT_*) }.
// Returns { child, messages, waitFor(type, ms), send(obj|string), endControl(), exited, output() }.
function startApp(opts = {}) {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('KNEXT_') || k === 'NODE_OPTIONS' || k === 'NODE_COMPILE_CACHE') delete env[k];
  if (opts.hook !== false) env.NODE_OPTIONS = `--require ${HOOK}`;
  const control = opts.control === undefined ? true : opts.control;
  if (control === true) {
    env.KNEXT_CONTROL_FD = '3';
    env.KNEXT_GATE = 'handoff';
  }
  Object.assign(env, { HOSTNAME: '127.0.0.1' }, opts.env || {});
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  const child = spawn(process.execPath, [opts.script || PLAIN], {
    env,
    cwd: opts.cwd,
    stdio: ['ignore', 'pipe', 'pipe', control === true ? 'pipe' : control === false ? 'ignore' : control],
  });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  const messages = [];
  const waiters = [];
  const ctl = control === true ? child.stdio[3] : null;
  if (ctl) {
    let buf = '';
    ctl.setEncoding('utf8');
    ctl.on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const msg = JSON.parse(line); // the hook must only ever send JSON lines
        messages.push(msg);
        for (const w of waiters.slice()) w();
      }
    });
    ctl.on('error', () => {});
  }
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  function waitFor(type, ms = 5000) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = messages.find((x) => x.type === type);
        if (!m) return false;
        clearTimeout(timer);
        waiters.splice(waiters.indexOf(check), 1);
        resolve(m);
        return true;
      };
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(check), 1);
        reject(new Error(`no "${type}" message within ${ms} ms; got ${JSON.stringify(messages)}; output: ${out}`));
      }, ms);
      waiters.push(check);
      check();
    });
  }
  function send(obj) {
    ctl.write((typeof obj === 'string' ? obj : JSON.stringify(obj)) + '\n');
  }
  function endControl() { ctl.end(); }
  function kill() { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); }
  return { child, messages, waitFor, send, endControl, exited, kill, output: () => out };
}

function get(port, urlPath = '/', host = '127.0.0.1', timeoutMs = 8000) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path: urlPath, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${urlPath} on ${port} timed out`)));
    req.on('error', reject);
  });
}

async function getJson(port, urlPath, host) {
  const r = await get(port, urlPath, host);
  return { ...r, json: JSON.parse(r.body) };
}

// Resolves with the connect error code ('ECONNREFUSED'), or 'connected'.
function probe(port, host = '127.0.0.1') {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.on('connect', () => { s.destroy(); resolve('connected'); });
    s.on('error', (e) => resolve(e.code));
  });
}

async function waitUntil(fn, ms = 5000, step = 25) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, step));
  }
}

function withTimeout(p, ms, what) {
  let t;
  return Promise.race([
    p,
    new Promise((_, reject) => { t = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms); }),
  ]).finally(() => clearTimeout(t));
}

module.exports = { ROOT, HOOK, PLAIN, NEXT_SERVER, freePort, startApp, get, getJson, probe, waitUntil, withTimeout };
