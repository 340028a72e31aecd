'use strict';
// knext-postwarm.cjs: the "post-warm" V8 code cache for CommonJS modules.
//
// Node's own compile cache (NODE_COMPILE_CACHE) serializes a module's code right after compiling
// it, so functions V8 compiles lazily (on first call) are never in it. V8's
// script.createCachedData() called AFTER the warm-up render does include them. This module
// compiles CommonJS modules with vm.Script, consuming the cache when it matches, and save()
// writes createCachedData() of every script it compiled.
//
// Loaded by knext-hook.cjs when KNEXT_COMPILE_CACHE=postwarm; install() at load, save() on the
// launcher's "flush". Dependency-free. Rule one: never throw into the app. Any internal failure
// for a module compiles that module with node's own Module.prototype._compile.
//
// On disk: ONE file, <KNEXT_POSTWARM_DIR>/knext-postwarm-<node>-<arch>-<V8>-<uid>.pack
// (next to, never inside, node's own <version>-<arch>-<tag>-<uid>/ directory):
//   "knext-postwarm/2 " JSON header "\n" data
//   header: { node, v8, arch, entries: [[filename, sourceLength, sourceHash, offset, length, dataHash], …] }
// An entry is used only for the same absolute filename AND the same source (length + crc32), and
// only if its bytes match their crc32: a changed file is a miss, a damaged entry a rejection.
// One pack, not a file per module: a file create costs far more than a read, times the hundreds
// of modules Next loads (README "Post-warm code cache"); so: one read at start, one write
// (temp + rename) per save.

var Module = require('module');
var fs = require('fs');
var path = require('path');
var vm = require('vm');

var FORMAT = 'knext-postwarm/2';
// Node's wrapper (Module.wrapper), with the prefix on a line of its own: compiled with
// lineOffset -1, the module's first line is line 1 and no column moves (node compiles CJS with
// ScriptCompiler::CompileFunction, which has no wrapper text at all).
var PREFIX = '(function (exports, require, module, __filename, __dirname) {\n';
var SUFFIX = '\n})';
var apply = Reflect.apply;

var st = {
  installed: false,
  reason: '',          // why install() did nothing
  file: '',            // the pack
  pack: null,          // the pack as on disk: { blob: Buffer, index: Map(filename -> entry) }
  packError: '',       // why an existing pack was not usable
  origCompile: null,
  origWrap: null,
  origWrapper: null,
  origWrapperText: null,
  hooksUsed: false,    // module.registerHooks() was called: node compiles, require.resolve goes through node
  kIsExecuting: null,  // node's private symbol (found on a module node compiled)
  importDefault: undefined,
  records: new Map(),  // filename -> { filename, srcLen, srcHash, script, loaded }
  compiled: 0,
  hits: 0,
  misses: 0,
  rejected: 0,         // an entry for this very source, refused: damaged (our crc32) or by V8
  fallbacks: 0,        // modules compiled by node's own _compile
  fallbackFiles: [],   // the first 20 of them
  seq: 0
};

var crc32 = null;
function hashOf(data) {
  // zlib.crc32 (node >= 20.15 / 22.2): what node's own compile cache checks. Next loads zlib anyway.
  if (crc32 === null) {
    try {
      var z = require('zlib');
      crc32 = typeof z.crc32 === 'function' ? z.crc32 : false;
    } catch (_) {
      crc32 = false;
    }
  }
  if (crc32) return crc32(data) >>> 0;
  return require('crypto').createHash('sha1').update(data).digest('hex');
}

function packName() {
  var uid = myUid() < 0 ? 'x' : String(myUid());
  var tag = 'knext-postwarm-' + process.version + '-' + process.arch + '-' + process.versions.v8 + '-' + uid;
  return tag.replace(/[^A-Za-z0-9._-]/g, '_') + '.pack';
}

// ---- the pack ------------------------------------------------------------------------
// V8 accepts cached data made from any source of the same length, so a pack is code: it is read
// only from a file that just its owner (this uid, or root) could have written. Opened without
// following a symlink or blocking on a FIFO, and checked on the open fd, not the path.
var MAX_PACK_BYTES = 1024 * 1024 * 1024;
var OPEN_READ = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;
var OPEN_NEW = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;

function myUid() {
  try { return typeof process.getuid === 'function' ? process.getuid() : -1; } catch (_) { return -1; }
}

// Why the open file may not be used, or '' when it may.
function untrusted(s) {
  if (!s.isFile()) return 'not a regular file';
  if (s.uid !== myUid() && s.uid !== 0) return 'owned by uid ' + s.uid;
  if (s.mode & 0o022) return 'writable by group or others';
  if (s.size > MAX_PACK_BYTES) return 'larger than ' + MAX_PACK_BYTES + ' bytes';
  return '';
}

function readTrusted(file) {
  var fd = fs.openSync(file, OPEN_READ);
  try {
    var s = fs.fstatSync(fd);
    var why = untrusted(s);
    if (why) throw new Error('refused: ' + why);
    var buf = Buffer.allocUnsafe(s.size);
    var got = 0;
    while (got < buf.length) {
      var n = fs.readSync(fd, buf, got, buf.length - got, got);
      if (n <= 0) break;
      got += n;
    }
    return buf.subarray(0, got);
  } finally {
    fs.closeSync(fd);
  }
}

function readPack(file) {
  var buf;
  try {
    buf = readTrusted(file);
  } catch (e) {
    if (!e || e.code !== 'ENOENT') st.packError = 'read: ' + String(e && e.code ? e.code : e && e.message ? e.message : e);
    return null;
  }
  try {
    var nl = buf.indexOf(10);
    if (nl < 0 || buf.toString('latin1', 0, FORMAT.length + 1) !== FORMAT + ' ') throw new Error('not a ' + FORMAT + ' file');
    var head = JSON.parse(buf.toString('utf8', FORMAT.length + 1, nl));
    if (!head || head.node !== process.version || head.v8 !== process.versions.v8 || head.arch !== process.arch) {
      throw new Error('written by another node');
    }
    var blob = buf.subarray(nl + 1);
    var index = new Map();
    var list = Array.isArray(head.entries) ? head.entries : [];
    for (var i = 0; i < list.length; i++) {
      var e = list[i];
      if (Array.isArray(e) && typeof e[0] === 'string') index.set(e[0], e);
    }
    return { blob: blob, index: index };
  } catch (e) {
    st.packError = String(e && e.message ? e.message : e);
    return null;
  }
}

// The entry's bytes if they are intact, else null.
function entryData(pack, e) {
  var off = e[3];
  var len = e[4];
  if (typeof off !== 'number' || typeof len !== 'number' || off < 0 || len <= 0 || off + len > pack.blob.length) return null;
  var data = pack.blob.subarray(off, off + len);
  return hashOf(data) === e[5] ? data : null;
}

// ---- require, as node's makeRequireFunction (lib/internal/modules/helpers.js) --------------
var probe = null;
function nodeRequire() {
  if (!probe) probe = Module.createRequire(__filename);
  return probe;
}

function makeRequire(mod) {
  function require(path) {
    return mod.require(path);
  }
  function resolve(request, options) {
    // Not a string: node's own require.resolve throws its own ERR_INVALID_ARG_TYPE.
    if (typeof request !== 'string') return nodeRequire().resolve(request, options);
    // module.registerHooks() in use: resolve through node, from the same file.
    if (st.hooksUsed && typeof mod.filename === 'string') return Module.createRequire(mod.filename).resolve(request, options);
    // node without hooks: wrapResolveFilename(request, mod, false, options ?? {}).filename
    return String(Module._resolveFilename(request, mod, false, options == null ? {} : options));
  }
  function paths(request) {
    if (typeof request !== 'string') return nodeRequire().resolve.paths(request);
    return Module._resolveLookupPaths(request, mod);
  }
  resolve.paths = paths;
  require.resolve = resolve;
  require.main = process.mainModule;
  require.extensions = Module._extensions;
  require.cache = Module._cache;
  return require;
}

// ---- compile -------------------------------------------------------------------------
function usable(mod, content, filename, format) {
  if (st.hooksUsed) return false;
  if (format !== undefined && format !== 'commonjs') return false; // ESM, TypeScript: node's
  if (typeof content !== 'string' || typeof filename !== 'string' || !path.isAbsolute(filename)) return false;
  if (!(mod instanceof Module)) return false;
  // Module.wrap/wrapper replaced or edited: node compiles with that wrapper; leave it to node.
  var w = Module.wrapper;
  if (Module.wrap !== st.origWrap || w !== st.origWrapper || w[0] !== st.origWrapperText[0] || w[1] !== st.origWrapperText[1]) return false;
  // The entry point stays node's: node's _compile keeps a stat cache for module resolution while
  // the outermost module runs (statCache, requireDepth 0), which is where most of the app loads
  // (fewer statx calls); --inspect-brk pauses on its first line (callAndPauseOnStart).
  // Its own code is not cached here (a small file for Next; NODE_COMPILE_CACHE covers it).
  if (process.mainModule === mod || mod.id === '.') return false;
  return true;
}

// Compiles the module's wrapper, with the cache when it matches. The wrapper function, or null
// (then node compiles the module itself).
function prepare(mod, content, filename, format) {
  if (!usable(mod, content, filename, format)) return null;
  var srcLen = content.length;
  var srcHash = hashOf(content);
  var cached = null;
  var damaged = false;
  var e = st.pack ? st.pack.index.get(filename) : undefined;
  if (e && e[1] === srcLen && e[2] === srcHash) {
    cached = entryData(st.pack, e);
    if (!cached) damaged = true; // torn or corrupt: V8 never sees it
  }
  var opts = { filename: filename, lineOffset: -1, importModuleDynamically: st.importDefault };
  if (cached) opts.cachedData = cached;
  // A hashbang is only valid at the very start of a script (CompileFunction accepts it at the
  // start of the body): the same line as a // comment, same length, so nothing moves.
  var body = content.charCodeAt(0) === 35 && content.charCodeAt(1) === 33 ? '//' + content.slice(2) : content;
  var script;
  try {
    script = new vm.Script(PREFIX + body + SUFFIX, opts);
  } catch (_) {
    return null; // a SyntaxError, or ESM syntax in a .js file: node reports it, or detects ESM
  }
  var loaded = !!cached;
  if (cached && script.cachedDataRejected === true) {
    damaged = true; // refused by V8's own checks (version, flags, source length, checksum)
    loaded = false;
  }
  // With source maps on, node's wrapSafe registers the module's map (maybeCacheSourceMap);
  // vm.Script does not. Leave such modules to node.
  if (script.sourceMapURL && process.sourceMapsEnabled) return null;
  var fn = script.runInThisContext({ displayErrors: false });
  if (typeof fn !== 'function') return null;
  if (damaged) st.rejected++;
  else if (loaded) st.hits++;
  else st.misses++;
  // The latest compile of a file is the one saved.
  st.records.set(filename, { filename: filename, srcLen: srcLen, srcHash: srcHash, script: script, loaded: loaded });
  return fn;
}

// Module.prototype._compile while installed. Named _compile: stack traces read
// "at Module._compile (…/knext-postwarm.cjs:…)" where node's read
// "at Module._compile (node:internal/modules/cjs/loader:…)"; the module's own frames are identical.
function _compile(content, filename, format) {
  var fn = null;
  try {
    fn = prepare(this, content, filename, format);
  } catch (_) {
    fn = null;
  }
  if (!fn) {
    st.fallbacks++;
    if (st.fallbackFiles.length < 20) st.fallbackFiles.push(String(filename));
    return apply(st.origCompile, this, arguments);
  }
  st.compiled++;
  // As node's Module.prototype._compile (lib/internal/modules/cjs/loader.js) calls the wrapper.
  var dirname = path.dirname(filename);
  var require = makeRequire(this);
  var exports = this.exports;
  var k = st.kIsExecuting;
  if (k) this[k] = true;
  var result = apply(fn, exports, [exports, require, this, filename, dirname]);
  if (k) this[k] = false;
  return result;
}

// vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER makes import() behave as in node's own CJS
// compile (vm_dynamic_import_default_internal: the default ESM loader, referrer = the script's
// filename), but node emits an ExperimentalWarning the first time it is used. Swallow exactly that
// warning; the filter takes itself out after it (node emits it once per process).
function installWarningFilter() {
  var orig = process.emitWarning;
  if (typeof orig !== 'function') return;
  var filter = function emitWarning(warning, type) {
    try {
      var msg = typeof warning === 'string' ? warning : (warning && warning.message);
      if (typeof msg === 'string' && msg.indexOf('vm.USE_MAIN_CONTEXT_DEFAULT_LOADER is an experimental feature') === 0) {
        if (process.emitWarning === filter) process.emitWarning = orig;
        return undefined;
      }
    } catch (_) { /* not ours */ }
    return apply(orig, this, arguments);
  };
  process.emitWarning = filter;
}

function findSymbol(obj, description) {
  try {
    var syms = Object.getOwnPropertySymbols(obj);
    for (var i = 0; i < syms.length; i++) if (syms[i].description === description) return syms[i];
  } catch (_) { /* ignore */ }
  return null;
}

// The pack's directory, or '' with st.reason saying why there is none.
function packDir(options, env) {
  var dir = options && typeof options.dir === 'string' ? options.dir : '';
  if (!dir) {
    if (env.KNEXT_COMPILE_CACHE !== 'postwarm') { st.reason = 'KNEXT_COMPILE_CACHE is not postwarm'; return ''; }
    dir = env.KNEXT_POSTWARM_DIR || '';
  }
  if (!dir) st.reason = 'KNEXT_POSTWARM_DIR is not set';
  return dir;
}

// Why this process cannot compile modules itself, or '' when it can.
function cannotInstall(env, orig) {
  if (env.NODE_V8_COVERAGE) return 'NODE_V8_COVERAGE is set: coverage offsets would include the wrapper';
  // Only in place of node's own _compile: a loader or APM agent that wrapped it first keeps working.
  if (typeof orig !== 'function' || String(orig).indexOf('wrapSafe(') < 0) return 'Module.prototype._compile is not node\'s own';
  if (!vm.constants || typeof vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER !== 'symbol') {
    return 'no vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER (node < 20.12 / 21.7): import() would break';
  }
  return '';
}

// module.registerHooks() makes node compile and resolve differently: note that it was called.
function watchRegisterHooks() {
  if (typeof Module.registerHooks !== 'function') return;
  var origRegister = Module.registerHooks;
  Module.registerHooks = function registerHooks(hooks) {
    st.hooksUsed = true;
    return apply(origRegister, this, arguments);
  };
}

// Enabled by KNEXT_COMPILE_CACHE=postwarm + KNEXT_POSTWARM_DIR, or install({ dir }).
// true when installed (now or before). Never throws.
function install(options) {
  try {
    if (st.installed) return true;
    var env = process.env;
    var dir = packDir(options, env);
    if (!dir) return false;
    var proto = Module.prototype;
    var orig = proto._compile;
    var why = cannotInstall(env, orig);
    if (why) { st.reason = why; return false; }
    st.importDefault = vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER;
    st.file = path.join(path.resolve(dir), packName());
    st.pack = readPack(st.file);
    st.origCompile = orig;
    st.origWrap = Module.wrap;
    st.origWrapper = Module.wrapper;
    st.origWrapperText = [st.origWrapper[0], st.origWrapper[1]];
    st.kIsExecuting = findSymbol(module, 'kIsExecuting');
    watchRegisterHooks();
    installWarningFilter();
    proto._compile = _compile;
    st.installed = true;
    return true;
  } catch (e) {
    st.reason = 'install failed: ' + String(e && e.message ? e.message : e);
    return false;
  }
}

// Temp files of saves that died between create and rename (SIGKILL, full disk), older than 10 min.
function removeStaleTemps(dir) {
  try {
    var prefix = '.' + path.basename(st.file) + '.';
    var names = fs.readdirSync(dir);
    var old = Date.now() - 600000;
    for (var i = 0; i < names.length; i++) {
      var n = names[i];
      if (n.slice(0, prefix.length) !== prefix || n.slice(-4) !== '.tmp') continue;
      try {
        var p = path.join(dir, n);
        if (fs.lstatSync(p).mtimeMs < old) fs.unlinkSync(p);
      } catch (_) { /* someone else's, or gone */ }
    }
  } catch (_) { /* best effort */ }
}

function writeAll(fd, buf) {
  for (var done = 0; done < buf.length;) done += fs.writeSync(fd, buf, done, buf.length - done);
}

function counters(out) {
  out.rejected = st.rejected;
  out.hits = st.hits;
  out.misses = st.misses;
  out.fallbacks = st.fallbacks;
  out.file = st.file;
  return out;
}

// The records to serialize: all, or (default) those not accepted at load, which are already the
// post-warm code of this very source (counted in out.kept).
function recordsToSave(all, out) {
  var todo = [];
  st.records.forEach(function (rec) {
    if (rec.loaded && !all) out.kept++;
    else todo.push(rec);
  });
  return todo;
}

// The pack's entries after this save: the intact entries on disk, with createCachedData() of the
// todo records in place of theirs. filename -> [filename, srcLen, srcHash, data, dataHash];
// changed: whether that differs from the pack on disk.
function mergeEntries(old, todo, out) {
  var next = new Map();
  var changed = !old;
  if (old) {
    old.index.forEach(function (e, f) {
      var data = entryData(old, e);
      if (data) next.set(f, [f, e[1], e[2], data, e[5]]);
      else changed = true; // drop a damaged entry
    });
  }
  todo.forEach(function (rec) {
    var f = rec.filename;
    var prev = next.get(f);
    var same = !!prev && prev[1] === rec.srcLen && prev[2] === rec.srcHash;
    var data = null;
    try {
      data = rec.script.createCachedData();
    } catch (e) {
      if (!out.error) out.error = 'createCachedData: ' + String(e && e.message ? e.message : e);
    }
    if (!data || !data.length) return;
    var h = hashOf(data);
    if (same && prev[3].length === data.length && prev[4] === h) {
      out.unchanged++;
      return;
    }
    next.set(f, [f, rec.srcLen, rec.srcHash, data, h]);
    out.written++;
    changed = true;
  });
  return { next: next, changed: changed };
}

// Writes the entries as the pack (temp file + rename; the temp file is removed on failure) and
// makes it the pack later saves compare against. Its size in bytes; throws on failure.
function writePack(next) {
  var entries = [];
  var parts = [];
  var off = 0;
  next.forEach(function (x) {
    entries.push([x[0], x[1], x[2], off, x[3].length, x[4]]);
    parts.push(x[3]);
    off += x[3].length;
  });
  var head = Buffer.from(FORMAT + ' ' + JSON.stringify({
    node: process.version, v8: process.versions.v8, arch: process.arch, entries: entries
  }) + '\n', 'utf8');
  var blob = Buffer.concat(parts, off);
  var dir = path.dirname(st.file);
  fs.mkdirSync(dir, { recursive: true });
  removeStaleTemps(dir);
  var tmp = path.join(dir, '.' + path.basename(st.file) + '.' + process.pid + '.' + (st.seq++) + '.tmp');
  try {
    var fd = fs.openSync(tmp, OPEN_NEW, 0o600);
    try {
      writeAll(fd, head);
      writeAll(fd, blob);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, st.file);
  } catch (e) {
    try { fs.unlinkSync(tmp); } catch (_) { /* ignore */ }
    throw e;
  }
  var index = new Map();
  for (var i = 0; i < entries.length; i++) index.set(entries[i][0], entries[i]);
  st.pack = { blob: blob, index: index };
  return head.length + blob.length;
}

// Writes the pack: createCachedData() of every script compiled so far, plus the entries of the
// pack on disk for modules this process did not load. Not re-serialized: modules whose entry
// was accepted this run (written after an earlier warm-up of this same source; { all: true }
// re-serializes them too). V8's bytes differ from one process to the next, so "unchanged" is
// only known within a process; when nothing changed the pack is not rewritten.
// Synchronous: createCachedData() runs on the main thread (see ms). Never throws:
// { ok, entries, bytes, written, unchanged, kept, rejected, hits, misses, fallbacks, file, ms, error? }
function save(options) {
  var t0 = process.hrtime.bigint();
  var out = { ok: false, entries: 0, bytes: 0, written: 0, unchanged: 0, kept: 0 };
  try {
    if (!st.installed) {
      out.error = 'not installed: ' + (st.reason || 'install() was not called');
      return finish(out, t0);
    }
    var old = st.pack;
    var todo = recordsToSave(!!(options && options.all), out);
    if (!todo.length && old) {
      out.entries = old.index.size;
      out.ok = true;
      return finish(out, t0);
    }
    var merged = mergeEntries(old, todo, out);
    out.entries = merged.next.size;
    if (merged.changed) out.bytes = writePack(merged.next);
    out.ok = true;
  } catch (e) {
    out.ok = false;
    out.error = (e && e.code ? e.code + ': ' : '') + String(e && e.message ? e.message : e);
  }
  return finish(out, t0);
}

function finish(out, t0) {
  counters(out);
  out.ms = Math.round(Number(process.hrtime.bigint() - t0) / 1e4) / 100;
  return out;
}

// Counters so far, no I/O.
function stats() {
  return counters({
    installed: st.installed,
    reason: st.reason,
    packError: st.packError,
    compiled: st.compiled,
    fallbackFiles: st.fallbackFiles.slice()
  });
}

module.exports = { install: install, save: save, stats: stats };
