'use strict';
// runtime/knext-postwarm.cjs on a plain CommonJS tree (tests/hook/fixtures/postwarm/tree):
// everything a module sees must be what plain node gives it, on the first run (cache misses,
// then save) and on the second (cache hits); damaged or stale entries fall back per module.
const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const zlib = require('node:zlib');
const h = require('./helpers.cjs');

const PW = process.env.KNEXT_TEST_POSTWARM || path.join(h.ROOT, 'runtime', 'knext-postwarm.cjs');
const FIX = path.join(__dirname, 'fixtures', 'postwarm');
const T = { timeout: 30000 };

// A private copy of the tree (entries are keyed by absolute filename; some tests edit sources).
function copyTree(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'knext-pw-tree-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.cpSync(path.join(FIX, 'tree'), path.join(dir, 'tree'), { recursive: true });
  return { tree: path.join(dir, 'tree'), cache: path.join(dir, 'cache'), out: path.join(dir, 'out.json') };
}

function cleanEnv(extra) {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('KNEXT_') || k.startsWith('PW_') || k === 'NODE_OPTIONS' || k === 'NODE_COMPILE_CACHE') delete env[k];
  return { ...env, ...extra };
}

// Runs a script of the tree with plain node (pw=false) or with the post-warm cache installed
// by fixtures/postwarm/preload.cjs, which saves at exit and reports to PW_OUT.
function run(ctx, script, pw, extraEnv = {}) {
  const args = pw ? ['--require', path.join(FIX, 'preload.cjs'), script] : [script];
  if (fs.existsSync(ctx.out)) fs.rmSync(ctx.out);
  const r = spawnSync(process.execPath, args, {
    cwd: ctx.tree,
    env: cleanEnv({ PW_MODULE: PW, PW_DIR: ctx.cache, PW_OUT: ctx.out, ...extraEnv }),
    encoding: 'utf8',
    timeout: 15000,
  });
  const report = pw && fs.existsSync(ctx.out) ? JSON.parse(fs.readFileSync(ctx.out, 'utf8')) : null;
  // Only the pid differs in node's own warnings.
  const stderr = r.stderr.replace(/\(node:\d+\)/g, '(node:PID)');
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr, report, json: r.status === 0 && r.stdout ? JSON.parse(r.stdout) : null };
}

function packPath(ctx) {
  const files = fs.readdirSync(ctx.cache).filter((f) => f.endsWith('.pack'));
  assert.equal(files.length, 1, `one pack in ${ctx.cache}: ${files}`);
  return path.join(ctx.cache, files[0]);
}

// { head, nl, buf, entry(file) } for the pack (format: see runtime/knext-postwarm.cjs).
function readPack(ctx) {
  const file = packPath(ctx);
  const buf = fs.readFileSync(file);
  const nl = buf.indexOf(10);
  const head = JSON.parse(buf.toString('utf8', buf.indexOf(32) + 1, nl));
  const entry = (name) => head.entries.find((e) => e[0] === path.join(ctx.tree, name));
  return { file, buf, nl, head, entry };
}

// Node's internal frames differ by design: Module._compile and require are ours.
function stripInternalFrames(text) {
  return text.split('\n').filter((l) => !(/^\s+at /.test(l) && (l.includes('node:internal') || l.includes(PW)))).join('\n');
}

test('CJS tree: same results and stderr as plain node; first run misses and saves, second run hits with 0 rejections', T, (t) => {
  const ctx = copyTree(t);
  const base = run(ctx, 'main.cjs', false);
  assert.equal(base.status, 0, base.stderr);
  assert.ok(base.json, base.stdout);

  const r1 = run(ctx, 'main.cjs', true);
  assert.equal(r1.status, 0, r1.stderr);
  assert.deepEqual(r1.json, base.json);
  assert.equal(r1.stderr, base.stderr); // same warnings (circular-require proxy), nothing of ours
  const s1 = r1.report;
  assert.equal(s1.installed, true, JSON.stringify(s1));
  // The entry point, ESM (require(esm) of a .mjs, ESM syntax detected in detect.js) and
  // syntax-error.cjs are node's: everything else is ours.
  assert.deepEqual(s1.stats.fallbackFiles.map((f) => path.basename(f)).sort(), ['detect.js', 'esm-cycle-b.mjs', 'main.cjs', 'syntax-error.cjs']);
  assert.ok(s1.stats.compiled >= 14, JSON.stringify(s1.stats));
  assert.equal(s1.stats.hits, 0);
  assert.equal(s1.stats.misses, s1.stats.compiled);
  assert.equal(s1.save.ok, true, JSON.stringify(s1.save));
  assert.equal(s1.save.written, s1.stats.compiled);
  assert.equal(s1.save.entries, s1.stats.compiled);

  const r2 = run(ctx, 'main.cjs', true);
  assert.equal(r2.status, 0, r2.stderr);
  assert.deepEqual(r2.json, base.json);
  assert.equal(r2.stderr, base.stderr);
  const s2 = r2.report;
  assert.equal(s2.stats.rejected, 0);
  assert.equal(s2.stats.misses, 0);
  assert.equal(s2.stats.hits, s1.stats.compiled);
  // Accepted entries are kept as they are: nothing to write.
  assert.equal(s2.save.ok, true);
  assert.equal(s2.save.written, 0);
  assert.equal(s2.save.bytes, 0);
  assert.equal(s2.save.kept, s1.stats.compiled);

  // save({ all: true }) re-serializes accepted entries too (V8's bytes differ per process: all written).
  const r3 = run(ctx, 'main.cjs', true, { PW_SAVE: 'all' });
  assert.deepEqual(r3.json, base.json);
  assert.equal(r3.report.save.ok, true);
  assert.equal(r3.report.save.kept, 0);
  assert.equal(r3.report.save.written + r3.report.save.unchanged, s1.stats.compiled);
  assert.equal(run(ctx, 'main.cjs', true).report.stats.hits, s1.stats.compiled);
});

test('an uncaught error at load prints the same file:line, source line, caret and app frames as node', T, (t) => {
  const ctx = copyTree(t);
  const base = run(ctx, 'uncaught.cjs', false);
  assert.equal(base.status, 1);
  assert.match(base.stderr, /throws\.cjs:3\n {2}throw new Error\('boom at load: ' \+ why\);\n {2}\^\n/);
  for (const pass of [1, 2]) {
    const r = run(ctx, 'uncaught.cjs', true);
    assert.equal(r.status, 1, `pass ${pass}`);
    assert.equal(stripInternalFrames(r.stderr), stripInternalFrames(base.stderr), `pass ${pass}`);
    // Same number of frames: ours replace node's, one for one.
    assert.equal(r.stderr.split('\n').length, base.stderr.split('\n').length, r.stderr);
  }
  assert.equal(run(ctx, 'uncaught.cjs', true).report.stats.hits, 1); // throws.cjs (the entry point is node's)
});

test('a damaged entry (bytes do not match their checksum) is a rejection; the module still loads and is rewritten', T, (t) => {
  const ctx = copyTree(t);
  const base = run(ctx, 'main.cjs', false);
  run(ctx, 'main.cjs', true);
  const p = readPack(ctx);
  const e = p.entry('lib/c.cjs');
  p.buf[p.nl + 1 + e[3] + Math.floor(e[4] / 2)] ^= 0xff;
  fs.writeFileSync(p.file, p.buf);

  const r = run(ctx, 'main.cjs', true);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.json, base.json);
  assert.equal(r.report.stats.rejected, 1);
  assert.equal(r.report.stats.hits, r.report.stats.compiled - 1);
  assert.equal(r.report.save.written, 1); // c.cjs, fresh
  const again = run(ctx, 'main.cjs', true);
  assert.equal(again.report.stats.rejected, 0);
  assert.equal(again.report.stats.hits, again.report.stats.compiled);
});

test('an entry V8 refuses (intact checksum, bytes that are not a code cache) is a rejection; the module still loads', T, (t) => {
  const ctx = copyTree(t);
  const base = run(ctx, 'main.cjs', false);
  run(ctx, 'main.cjs', true);
  const p = readPack(ctx);
  const e = p.entry('lib/b.cjs');
  const start = p.nl + 1 + e[3];
  for (let i = 0; i < e[4]; i++) p.buf[start + i] = (i * 31 + 7) & 0xff;
  e[5] = zlib.crc32(p.buf.subarray(start, start + e[4])) >>> 0;
  const magic = p.buf.toString('latin1', 0, p.buf.indexOf(32));
  fs.writeFileSync(p.file, Buffer.concat([Buffer.from(`${magic} ${JSON.stringify(p.head)}\n`), p.buf.subarray(p.nl + 1)]));

  const r = run(ctx, 'main.cjs', true);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.json, base.json);
  assert.equal(r.report.stats.rejected, 1);
  assert.equal(r.report.save.written, 1);
});

test('a pack that is not a pack (garbage, truncated) is ignored: every module compiles, then it is rewritten', T, (t) => {
  const ctx = copyTree(t);
  const base = run(ctx, 'main.cjs', false);
  run(ctx, 'main.cjs', true);
  const file = packPath(ctx);
  for (const bytes of [Buffer.from('garbage\n\x00\x01'), fs.readFileSync(file).subarray(0, 40)]) {
    fs.writeFileSync(file, bytes);
    const r = run(ctx, 'main.cjs', true);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.json, base.json);
    assert.notEqual(r.report.stats.packError, '');
    assert.equal(r.report.stats.hits, 0);
    assert.equal(r.report.save.written, r.report.stats.compiled);
  }
  const again = run(ctx, 'main.cjs', true).report.stats;
  assert.equal(again.hits, again.compiled);
});

// V8 takes cached data made from any source of the same length: a pack is code, used only when
// just this uid (or root) could have written it. Checked on the opened file; a FIFO never blocks.
test('a pack another uid owns, others can write, behind a symlink, or a FIFO is a miss; nothing hangs', T, (t) => {
  const ctx = copyTree(t);
  const base = run(ctx, 'main.cjs', false);
  run(ctx, 'main.cjs', true);
  const file = packPath(ctx);
  const good = fs.readFileSync(file);
  const isRoot = process.getuid() === 0;
  const cases = [
    ['writable by others', () => { fs.writeFileSync(file, good); fs.chmodSync(file, 0o666); }, /writable by group or others/],
    ['a symlink to a good pack', () => {
      const elsewhere = path.join(path.dirname(ctx.cache), 'elsewhere.pack');
      fs.writeFileSync(elsewhere, good, { mode: 0o600 });
      fs.rmSync(file, { force: true });
      fs.symlinkSync(elsewhere, file);
    }, /ELOOP/],
    ['a FIFO', () => { fs.rmSync(file, { force: true }); spawnSync('mkfifo', [file]); }, /not a regular file/],
  ];
  if (isRoot) cases.push(['owned by another uid', () => { fs.rmSync(file, { force: true }); fs.writeFileSync(file, good, { mode: 0o600 }); fs.chownSync(file, 64021, 64021); }, /owned by uid 64021/]);
  for (const [what, plant, why] of cases) {
    plant();
    const r = run(ctx, 'main.cjs', true);
    assert.equal(r.signal, null, what + ': node hung or was killed');
    assert.equal(r.status, 0, what + ': ' + r.stderr);
    assert.deepEqual(r.json, base.json, what);
    assert.match(r.report.stats.packError, why, what);
    assert.equal(r.report.stats.hits, 0, what);
    // The save replaced it with a pack of our own, in the same directory.
    const st = fs.lstatSync(file);
    assert.ok(st.isFile() && (st.mode & 0o077) === 0, what);
  }
  assert.equal(run(ctx, 'main.cjs', true).report.stats.hits, run(ctx, 'main.cjs', true).report.stats.compiled);
});

test('changing a source file makes only its entry a miss (same length too)', T, (t) => {
  const ctx = copyTree(t);
  run(ctx, 'main.cjs', true);
  const c = path.join(ctx.tree, 'lib', 'c.cjs');
  const src = fs.readFileSync(c, 'utf8');
  const changed = src.replace("'c-1'", "'c-2'");
  assert.equal(changed.length, src.length); // V8 alone only checks the length
  fs.writeFileSync(c, changed);
  const r = run(ctx, 'main.cjs', true);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.json.chain, ['a', 'b', 'c', 'c-2']);
  assert.equal(r.report.stats.misses, 1);
  assert.equal(r.report.stats.rejected, 0);
  assert.equal(r.report.stats.hits, r.report.stats.compiled - 1);
  assert.equal(r.report.save.written, 1);
  assert.equal(r.report.save.entries, r.report.stats.compiled); // replaced, not added
  const again = run(ctx, 'main.cjs', true);
  assert.deepEqual(again.json.chain, ['a', 'b', 'c', 'c-2']);
  assert.equal(again.report.stats.hits, again.report.stats.compiled);
});

test('off unless asked; never throws: an unusable cache directory leaves the app alone', T, (t) => {
  const ctx = copyTree(t);
  const base = run(ctx, 'main.cjs', false);
  // install() without a dir and without KNEXT_COMPILE_CACHE=postwarm: not installed.
  const off = spawnSync(process.execPath, ['-e', `const pw = require(${JSON.stringify(PW)}); console.log(JSON.stringify([pw.install(), pw.stats().reason, pw.save().ok]))`], {
    env: cleanEnv({}), encoding: 'utf8', timeout: 10000,
  });
  assert.deepEqual(JSON.parse(off.stdout), [false, 'KNEXT_COMPILE_CACHE is not postwarm', false]);
  // The cache "directory" is a regular file: nothing can be read or written there.
  fs.writeFileSync(ctx.cache, 'not a directory');
  const r = run(ctx, 'main.cjs', true);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.json, base.json);
  assert.equal(r.report.save.ok, false);
  assert.match(r.report.save.error, /ENOTDIR|EEXIST/);
});

test('the hook loads it with KNEXT_COMPILE_CACHE=postwarm and reports save() in "flushed"', T, async (t) => {
  const ctx = copyTree(t);
  const PORT = await h.freePort();
  const env = { PORT: String(PORT), KNEXT_COMPILE_CACHE: 'postwarm', KNEXT_POSTWARM_DIR: ctx.cache };
  const a = h.startApp({ env, script: path.join(FIX, 'server.cjs') });
  t.after(() => a.kill());
  await a.waitFor('listening');
  a.send({ type: 'flush' });
  const f = await a.waitFor('flushed');
  assert.equal(f.ok, true);
  assert.equal(f.postwarm.ok, true, JSON.stringify(f));
  assert.ok(f.postwarm.written >= 1, JSON.stringify(f)); // the plain server fixture itself
  assert.equal(f.postwarm.rejected, 0);
  assert.equal(Object.keys(f).pop(), 'postwarm'); // last: the launcher's flat parser takes the first "ok"
  // Without KNEXT_COMPILE_CACHE=postwarm the message is unchanged.
  const b = h.startApp({ env: { PORT: String(await h.freePort()) } });
  t.after(() => b.kill());
  await b.waitFor('listening');
  b.send({ type: 'flush' });
  assert.equal('postwarm' in (await b.waitFor('flushed')), false);
});

test('module.registerHooks() and an edited Module.wrapper behave as in plain node', T, (t) => {
  const ctx = copyTree(t);
  for (const script of ['hooks.cjs', 'wrapper.cjs']) {
    const base = run(ctx, script, false);
    assert.equal(base.status, 0, base.stderr);
    for (const pass of [1, 2]) {
      const r = run(ctx, script, true);
      assert.equal(r.status, 0, `${script} pass ${pass}: ${r.stderr}`);
      assert.deepEqual(r.json, base.json, `${script} pass ${pass}`);
      assert.equal(r.stderr, base.stderr);
    }
  }
  // hooks.cjs: early.cjs was ours (compiled before the hooks); after registerHooks node compiles.
  const r = run(ctx, 'hooks.cjs', true);
  assert.deepEqual(r.report.stats.fallbackFiles.map((f) => path.basename(f)).sort(), ['c.cjs', 'hooks.cjs', 'late.cjs']);
  assert.equal(r.report.stats.hits, 1);
});
