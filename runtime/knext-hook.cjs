'use strict';
// knext-hook.cjs: the in-process half of knext-launch.
// Loaded with NODE_OPTIONS=--require /abs/path/knext-hook.cjs. Dependency-free.
// Protocol and behaviour: see runtime/README.md. Rule one: never throw into the app.
// Every entry point is wrapped; on any internal failure the app still ends up
// listening on its PORT (the hook falls back to the app's own listen call).
//
// One duty per part, wired together by main() at the end:
//   launch environment   what the launcher passed, taken out of process.env
//   control channel      the line protocol on KNEXT_CONTROL_FD (send, read, fail-open on loss)
//   busy/idle watch      user requests in flight, told while the launcher watches
//   traffic counts       how often users requested each path (--learn-paths)
//   cache flush          node's compile cache, the post-warm cache, the --prewarm manifest
//   drain on close       Connection: close for what is still in flight once the app closes
//   gate open            the public listener on PORT, opened on "open", closed with the app
//   listen redirect      the app's first listen(PORT) moved to an internal loopback port

function errText(e) {
  try {
    if (e && e.code) return String(e.code) + ': ' + String(e.message);
    return String(e && e.message ? e.message : e);
  } catch (_) {
    return 'unknown error';
  }
}

// ---- launch environment ---------------------------------------------------------------
// The launcher's variables, removed from process.env: children (and their copy of this hook via
// NODE_OPTIONS) must not act on them. null when not under knext-launch: zero behaviour change.
function takeLaunchEnv(env) {
  var fdText;
  try {
    fdText = env.KNEXT_CONTROL_FD;
    if (fdText === undefined) return null;
    // The fd itself is close-on-exec in node; the variable would make a child grab its own fd N.
    delete env.KNEXT_CONTROL_FD;
  } catch (_) {
    return null;
  }
  // --prewarm: where to record the files loaded up to the flush, for the page-cache prewarm.
  var launch = { fdText: fdText, manifestPath: env.KNEXT_MANIFEST_PATH || '', manifestBuildId: env.KNEXT_BUILD_ID || '' };
  delete env.KNEXT_MANIFEST_PATH;
  delete env.KNEXT_BUILD_ID;
  // --learn-paths: count the paths users request.
  launch.traffic = env.KNEXT_TRAFFIC === '1';
  delete env.KNEXT_TRAFFIC;
  return launch;
}

// Post-warm V8 code cache for CommonJS (runtime/knext-postwarm.cjs), before the app compiles anything.
function loadPostwarm(env) {
  if (env.KNEXT_COMPILE_CACHE !== 'postwarm') return null;
  try {
    var postwarm = require('./knext-postwarm.cjs');
    postwarm.install();
    return postwarm;
  } catch (_) {
    return null;
  }
}

// The control fd as a socket, or null when it is not an open socket/pipe: behave as if absent.
function openControlSocket(fdText) {
  try {
    if (!/^\d+$/.test(fdText)) return null;
    var fd = Number(fdText);
    if (fd < 3 || fd > 65535) return null; // 0-2 are stdio: invalid
    var kind = require('fs').fstatSync(fd);
    if (!kind.isSocket() && !kind.isFIFO()) return null; // e.g. a tty or a file: not ours
    var net = require('net');
    var sock = new net.Socket({ fd: fd, readable: true, writable: true });
    sock.unref(); // never keep the event loop alive
    return { net: net, sock: sock };
  } catch (_) {
    return null;
  }
}

// PORT as a number in 1..65535, else NaN (nothing to gate).
function publicPortOf(portText) {
  var port = /^\s*\d+\s*$/.test(portText || '') ? Number(portText) : NaN;
  return port >= 1 && port <= 65535 ? port : NaN;
}

// ---- control channel ------------------------------------------------------------------
// Newline-delimited JSON each way. send() never throws and does nothing once the channel is
// gone; safe() runs one step and reports its exception instead of letting it reach the app.
function createChannel(sock) {
  var ch = { alive: true };
  var buf = '';

  ch.send = function send(obj) {
    try {
      if (!ch.alive || sock.destroyed || !sock.writable) return;
      sock.write(JSON.stringify(obj) + '\n');
    } catch (_) { /* ignore */ }
  };
  ch.reportError = function reportError(where, e) {
    ch.send({ type: 'error', message: where + ': ' + errText(e) });
  };
  ch.safe = function safe(where, fn) {
    try {
      return fn();
    } catch (e) {
      ch.reportError(where, e);
      return undefined;
    }
  };

  // A bare word or an object with a string "type": onMessage(type, msg or undefined).
  function readLine(line, onMessage) {
    line = line.trim();
    if (!line) return;
    var type = line;
    var msg;
    if (line.charAt(0) === '{') {
      try { msg = JSON.parse(line); } catch (_) { msg = null; }
      if (!msg || typeof msg.type !== 'string') {
        ch.send({ type: 'error', message: 'bad message: ' + line.slice(0, 200) });
        return;
      }
      type = msg.type;
    }
    onMessage(type, msg);
  }

  function readChunk(chunk, onMessage) {
    buf += chunk;
    if (buf.length > 65536 && buf.indexOf('\n') < 0) buf = ''; // runaway line
    var nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      var line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      ch.safe('message', function () { readLine(line, onMessage); });
    }
  }

  // Starts reading; onGone() once, at EOF, error or close. false when the socket cannot be read.
  ch.start = function start(onMessage, onGone) {
    function gone() {
      if (!ch.alive) return;
      ch.alive = false;
      onGone();
    }
    try {
      sock.setEncoding('utf8');
      sock.on('data', function (chunk) { ch.safe('control read', function () { readChunk(chunk, onMessage); }); });
      sock.on('end', function () { ch.safe('control eof', gone); });
      sock.on('error', function () { ch.safe('control error', gone); });
      sock.on('close', function () { ch.safe('control close', gone); });
      return true;
    } catch (_) {
      return false;
    }
  };
  return ch;
}

// ---- busy/idle watch ------------------------------------------------------------------
// Background warming: the launcher wants to know when user requests (not warm-ups) are in
// flight. Counted always (one header read per request), told only on busy/idle transitions
// and only while watching.
// whenIdle(fn) runs fn once no user request is in flight (at once if none is); whenQuiet(fn, ms)
// once none has been for ms either (a client's next request comes right after its last answer).
function createBusyWatch(ch, traffic) {
  var users = 0;
  var watching = false;
  var idleWaiters = [];
  var lastEnd = 0;
  function wakeIdle() {
    var list = idleWaiters;
    idleWaiters = [];
    for (var i = 0; i < list.length; i++) ch.safe('idle', list[i]);
  }
  return {
    set: function watchBusy(on) {
      watching = on;
      if (on) ch.send({ type: users > 0 ? 'busy' : 'idle' });
    },
    count: function countUser(req, res) {
      if (req.headers['x-knext-warmup'] === '1') return;
      ch.safe('traffic', function () { traffic.count(req); });
      if (++users === 1 && watching) ch.send({ type: 'busy' });
      res.once('close', function () {
        lastEnd = Date.now();
        if (--users > 0) return;
        if (watching) ch.send({ type: 'idle' });
        if (idleWaiters.length) setImmediate(wakeIdle);
      });
    },
    whenIdle: whenIdle,
    whenQuiet: whenQuiet
  };
  function whenIdle(fn) {
    if (users > 0) idleWaiters.push(fn);
    else ch.safe('idle', fn);
  }
  // notBefore: a time (Date.now()) fn never runs before, whatever users did.
  function whenQuiet(fn, ms, notBefore) {
    whenIdle(function () {
      var left = Math.max(lastEnd + ms, notBefore || 0) - Date.now();
      if (left <= 0) return fn();
      setTimeout(function () { ch.safe('quiet', function () { whenQuiet(fn, ms, notBefore); }); }, left);
    });
  }
}

// ---- traffic counts -------------------------------------------------------------------
// --learn-paths (KNEXT_TRAFFIC=1): how often users requested each path, for the launcher to
// warm the most requested routes first next time. The pathname only: never the query, a header
// or the body. At most 200 distinct paths (new ones beyond are dropped) of at most 256 bytes of
// printable ASCII without '"' or '\\' (so a report stays one small message); nothing under
// /_next/. report() sends the counts since the last report and starts again from zero.
function createTraffic(ch, on) {
  var maxPaths = 200;
  var maxBytes = 256;
  var counts = new Map();
  if (!on) return { count: function () {}, report: function () {} };

  function pathOf(url) {
    if (typeof url !== 'string' || url.charAt(0) !== '/') return '';
    var end = url.length;
    var q = url.indexOf('?');
    if (q >= 0) end = q;
    var hash = url.indexOf('#');
    if (hash >= 0 && hash < end) end = hash;
    if (end > maxBytes) return '';
    var p = url.slice(0, end);
    if (!/^\/[\x21-\x7e]*$/.test(p) || /["\\]/.test(p) || p.indexOf('/_next/') >= 0) return '';
    return p;
  }

  // Health checks are not users: Knative's queue-proxy probes the app with K-Kubelet-Probe (or
  // K-Network-Probe), the kubelet with a kube-probe/ user agent.
  function isProbe(headers) {
    var ua = headers['user-agent'];
    return headers['k-kubelet-probe'] !== undefined || headers['k-network-probe'] !== undefined ||
      (typeof ua === 'string' && (ua.indexOf('kube-probe/') === 0 || ua.indexOf('Knative-') === 0));
  }

  return {
    count: function countPath(req) {
      if (req.method !== 'GET' && req.method !== 'HEAD') return;
      if (isProbe(req.headers)) return;
      var p = pathOf(req.url);
      if (!p) return;
      var n = counts.get(p);
      if (n !== undefined) counts.set(p, n + 1);
      else if (counts.size < maxPaths) counts.set(p, 1);
    },
    // always: also when there is nothing to report (the launcher asked).
    report: function reportTraffic(always) {
      if (!counts.size && !always) return;
      var paths = {};
      counts.forEach(function (n, p) { paths[p] = n; });
      counts = new Map();
      ch.send({ type: 'traffic', paths: paths });
    }
  };
}

// ---- cache flush ----------------------------------------------------------------------
function createCacheFlush(ch, launch, postwarm) {
  // One absolute path per line in first-load order (require.cache keeps insertion order);
  // temp file + rename, so a reader never sees half of it.
  function writeManifest() {
    if (!launch.manifestPath) return;
    try {
      var fs = require('fs');
      var lines = ['# knext-prewarm-manifest v1'];
      if (/^[A-Za-z0-9_-]{1,64}$/.test(launch.manifestBuildId)) lines.push('# build-id ' + launch.manifestBuildId);
      Object.keys(require.cache).forEach(function (p) {
        if (p.charAt(0) === '/' && p.indexOf('\n') < 0 && p.slice(-1) !== '\r') lines.push(p);
      });
      var tmp = launch.manifestPath + '.' + process.pid + '.tmp';
      fs.writeFileSync(tmp, lines.join('\n') + '\n');
      fs.renameSync(tmp, launch.manifestPath);
    } catch (e) {
      ch.reportError('manifest', e);
    }
  }

  function savePostwarm() {
    if (!postwarm) return undefined;
    try { return postwarm.save(); } catch (e) { return { ok: false, error: errText(e) }; }
  }

  function compileCacheDir(mod) {
    try {
      if (typeof mod.getCompileCacheDir === 'function') return mod.getCompileCacheDir() || '';
    } catch (_) { /* ignore */ }
    return '';
  }

  return function flush() {
    writeManifest();
    var mod = require('module');
    var pw = savePostwarm();
    var dir = compileCacheDir(mod);
    if (typeof mod.flushCompileCache !== 'function') {
      ch.send({ type: 'flushed', ok: false, error: 'module.flushCompileCache is not available in node ' + process.version, dir: dir, postwarm: pw });
      return;
    }
    try {
      mod.flushCompileCache();
      ch.send({ type: 'flushed', ok: true, dir: dir, postwarm: pw });
    } catch (e) {
      ch.send({ type: 'flushed', ok: false, error: errText(e), dir: dir, postwarm: pw });
    }
  };
}

// Work the hook does on its own after the gate opens waits until no user request has been in
// flight for QUIET_MS (a client's next request comes right after its last answer), and the
// deferred preload starts no sooner than START_QUIET_MS after "preload" (the requests held for
// the gate come first).
var QUIET_MS = 50;
var START_QUIET_MS = 100;

// ---- next preload deferral -------------------------------------------------------------
// Since Next 15, experimental.preloadEntriesOnStart (on by default) has NextNodeServer's
// constructor start unstable_preloadEntries(): every route's modules load while the first
// request waits, ~0.7 ms a route. With KNEXT_NEXT_PRELOAD=defer that first call is kept back
// and run on "preload" (sent once the gate is open): one route at a time, each only once no
// user request has been in flight for QUIET_MS (and not before QUIET_MS after "preload", so the
// requests held for the gate come first). Next's own method does the loading, on a view of the server that
// lists one route, so what gets loaded is what Next would load. An app that switched preloading
// off never makes the call, and nothing happens.
function createNextPreload(ch, watch, mode) {
  var st = { server: null, run: null, started: false, pending: false };
  if (mode !== 'defer') return { install: function () {}, start: function () {} };
  var path = require('path');
  var Module = require('module');
  var origLoad = Module.prototype.load;
  var serverFile = path.sep + path.join('next', 'dist', 'server', 'next-server.js');

  function unsupported(why) {
    ch.send({ type: 'next-preload', state: 'unsupported', message: why });
  }

  function patch(exp, file) {
    var Cls = exp && (exp.default || exp.NextNodeServer);
    var proto = Cls && Cls.prototype;
    var orig = proto && proto.unstable_preloadEntries;
    if (typeof orig !== 'function') return unsupported('no NextNodeServer.unstable_preloadEntries in ' + file);
    proto.unstable_preloadEntries = function knextDeferredPreload() {
      if (proto.unstable_preloadEntries === knextDeferredPreload) proto.unstable_preloadEntries = orig;
      if (st.server) return orig.apply(this, arguments); // another server: as Next does
      st.server = this;
      st.run = orig;
      ch.send({ type: 'next-preload', state: 'deferred' });
      if (st.pending) start();
      return Promise.resolve();
    };
  }

  function knextLoad(filename) {
    var out = origLoad.apply(this, arguments);
    if (typeof filename === 'string' && filename.slice(-serverFile.length) === serverFile) {
      if (Module.prototype.load === knextLoad) Module.prototype.load = origLoad;
      var mod = this;
      ch.safe('next preload', function () { patch(mod.exports, filename); });
    }
    return out;
  }

  function manifest(server, getter) {
    try { return (typeof server[getter] === 'function' && server[getter]()) || {}; } catch (_) { return {}; }
  }

  // One route: Next's method on a view whose manifests list just that route.
  function loadOne(server, kind, page, entry) {
    var view = Object.create(server);
    var one = {};
    one[page] = entry;
    view.getPagesManifest = function () { return kind === 'pages' ? one : {}; };
    view.getAppPathsManifest = function () { return kind === 'app' ? one : {}; };
    return st.run.call(view);
  }

  function runAll(server) {
    var t0 = Date.now();
    var pages = manifest(server, 'getPagesManifest');
    var app = manifest(server, 'getAppPathsManifest');
    var todo = Object.keys(pages).map(function (p) { return ['pages', p, pages[p]]; })
      .concat(Object.keys(app).map(function (p) { return ['app', p, app[p]]; }));
    var i = 0;
    function step() {
      if (i >= todo.length) {
        ch.send({ type: 'next-preload', state: 'done', pages: todo.length, ms: Date.now() - t0 });
        return;
      }
      watch.whenQuiet(function () {
        var item = todo[i++];
        var next = function () { setImmediate(step); };
        var p;
        try { p = loadOne(server, item[0], item[1], item[2]); } catch (_) { p = null; }
        if (p && typeof p.then === 'function') p.then(next, next);
        else next();
      }, QUIET_MS, t0 + START_QUIET_MS);
    }
    step();
  }

  function start() {
    st.pending = true;
    if (!st.server || st.started) return;
    st.started = true;
    var server = st.server;
    // The view must not run prepare() itself: wait until the real server is prepared.
    var ready = server.prepared ? Promise.resolve() : Promise.resolve(server.prepare());
    ready.then(function () { ch.safe('next preload', function () { runAll(server); }); }, function (e) {
      ch.reportError('next preload', e);
    });
  }

  return {
    install: function () {
      try { Module.prototype.load = knextLoad; } catch (e) { ch.reportError('next preload install', e); }
    },
    start: start
  };
}

// ---- drain on close -------------------------------------------------------------------
// Node's close() ends idle keep-alive connections, but one busy at that moment stays open
// after its response until keepAliveTimeout (5 s), and node exits that much later. As Go's
// Server.Shutdown does: once closing, responses not yet started say "Connection: close"
// (node then ends the connection after them) and connections that go idle are closed.
function createDrain(ch, hold, watch, traffic) {
  var inflight = new Set();

  function endAfter(server, res) {
    try {
      if (!res.headersSent) res.shouldKeepAlive = false;
      res.once('close', function () {
        setImmediate(function () {
          try { server.closeIdleConnections(); } catch (_) { /* node < 18.2 */ }
        });
      });
    } catch (_) { /* node's default behaviour */ }
  }

  function trackRequests(server) {
    if (typeof server.closeIdleConnections !== 'function') return; // node < 18.2
    server.prependListener('request', function knextTrack(req, res) {
      if (hold.closed) return endAfter(server, res);
      try { watch.count(req, res); } catch (_) { /* never into the app */ }
      inflight.add(res);
      res.once('close', function () { inflight.delete(res); });
    });
  }

  function drain(server) {
    var list = Array.from(inflight);
    inflight.clear();
    for (var i = 0; i < list.length; i++) endAfter(server, list[i]);
  }

  // The app's close(): first closePublic(server), then drain, then the app's own close.
  return function installClose(server, closePublic) {
    trackRequests(server);
    var hadOwn = Object.prototype.hasOwnProperty.call(server, 'close');
    var prevClose = server.close;
    var hook = function close() {
      // Before node exits (Next calls close() on SIGTERM): the launcher saves the counts.
      ch.safe('traffic', function () { traffic.report(false); });
      ch.safe('close', function () { closePublic(server); });
      ch.safe('drain', function () { drain(server); });
      try {
        if (server.close === hook) {
          if (hadOwn) server.close = prevClose;
          else delete server.close;
        }
      } catch (_) { /* ignore */ }
      return prevClose.apply(this, arguments);
    };
    server.close = hook;
    server.once('close', function () { ch.safe('close', closePublic); });
  };
}

// ---- gate open ------------------------------------------------------------------------
// h: { ch, net, origListen, hold, handoff, publicPort }. hold is the state of the app's server
// the redirect holds back; the gate opens it on PORT and closes it with the app.
function createGate(h) {
  var ch = h.ch;
  var hold = h.hold;
  // Closing a listener resets the connections still in the kernel's accept queue: their
  // requests were sent and would be lost. So the public listener closes only after a full
  // poll phase accepted nothing more (two setImmediate hops span one), and the app server's
  // close waits for that on a borrowed connection count.
  var publicAccepted = 0;

  function requestOpen() {
    if (h.handoff && hold.watching) {
      hold.wantOpen = true; // the app has not listened yet: let it listen on PORT directly
      return;
    }
    if (!h.handoff || !hold.server) {
      // Nothing held back: the app's listener (if any) is the public one.
      if (ch.alive && !hold.watching) ch.send({ type: 'opened', port: h.publicPort, direct: true });
      return;
    }
    hold.wantOpen = true;
    if (hold.opened && hold.pub && hold.pub.listening) {
      ch.send({ type: 'opened', port: h.publicPort }); // repeated "open": idempotent
      return;
    }
    if (hold.internal) openPublic();
  }

  // A net.Server with the per-accept settings net.Server applies (stored, already-normalised values).
  function createPublicServer(server) {
    try {
      var pub = h.net.createServer({ allowHalfOpen: server.allowHalfOpen, pauseOnConnect: server.pauseOnConnect });
      pub.noDelay = server.noDelay;
      pub.keepAlive = server.keepAlive;
      pub.keepAliveInitialDelay = server.keepAliveInitialDelay;
      pub.highWaterMark = server.highWaterMark;
      if (server.blockList) pub.blockList = server.blockList;
      return pub;
    } catch (e) {
      ch.reportError('public listener options', e);
      return h.net.createServer(); // minimal fallback
    }
  }

  function openPublic() {
    if (hold.opened || hold.closed || !hold.server) return;
    var server = hold.server;
    hold.opened = true;
    var pub = createPublicServer(server);
    pub.on('connection', function (conn) { onPublicConnection(server, pub, conn); });
    hold.pub = pub;
    var up = false;
    pub.on('error', function (err) {
      ch.reportError(up ? 'public listener' : 'public listen failed', err);
      if (!up) hold.pub = null;
      // As without the hook: the app's server gets its listen/accept errors.
      server.emit('error', err);
    });
    pub.unref(); // liveness follows the app's own server handle
    h.origListen.call(pub, publicListenOptions(hold.plan.o), function () {
      up = true;
      ch.safe('opened', function () {
        var a = pub.address();
        ch.send({ type: 'opened', port: a && typeof a === 'object' ? a.port : h.publicPort });
      });
    });
  }

  function onPublicConnection(server, pub, conn) {
    try {
      if (server.maxConnections != null && server._connections >= server.maxConnections) {
        conn.destroy();
        return;
      }
      // Account the connection to the app's server, as its own accept would:
      // close() then waits for it, getConnections() counts it.
      pub._connections--;
      server._connections++;
      conn.server = server;
      conn._server = server;
    } catch (_) { /* accounting is best effort */ }
    publicAccepted++;
    server.emit('connection', conn);
  }

  function holdServerClose(server) {
    try { server._connections++; } catch (_) { return function () {}; }
    return function release() {
      try {
        server._connections--;
        if (typeof server._emitCloseIfDrained === 'function') server._emitCloseIfDrained();
      } catch (_) { /* accounting is best effort */ }
    };
  }

  function closePublic(server) {
    hold.closed = true;
    var pub = hold.pub;
    hold.pub = null;
    if (!pub || !pub.listening) return;
    var release = server ? holdServerClose(server) : function () {};
    var seen = publicAccepted;
    var hops = 0;
    (function settle() {
      setImmediate(function () {
        setImmediate(function () {
          if (publicAccepted !== seen && ++hops < 50) {
            seen = publicAccepted;
            return settle();
          }
          try { pub.close(); } catch (e) { ch.reportError('close public', e); }
          release();
        });
      });
    })();
  }

  return { requestOpen: requestOpen, openPublic: openPublic, closePublic: closePublic };
}

function publicListenOptions(o) {
  var p = { port: Number(o.port) };
  if (o.host !== undefined && o.host !== null) p.host = o.host;
  if (o.backlog !== undefined) p.backlog = o.backlog;
  if (o.exclusive !== undefined) p.exclusive = o.exclusive;
  if (o.ipv6Only !== undefined) p.ipv6Only = o.ipv6Only;
  if (o.reusePort !== undefined) p.reusePort = o.reusePort;
  return p;
}

// ---- listen redirect: what a listen call is -------------------------------------------
// Mirrors net's normalizeArgs for the shapes an HTTP server uses: { o, cb } for a listen on
// publicPort, else null.
function parseListen(args, publicPort) {
  var a = Array.prototype.slice.call(args);
  var cb = a.length && typeof a[a.length - 1] === 'function' ? a.pop() : undefined;
  var first = a[0];
  var o;
  if (first !== null && typeof first === 'object') {
    if (first.path !== undefined || first.fd !== undefined || first.handle !== undefined || first._handle !== undefined) return null;
    o = {
      port: first.port, host: first.host, backlog: first.backlog, exclusive: first.exclusive,
      ipv6Only: first.ipv6Only, reusePort: first.reusePort, signal: first.signal
    };
  } else {
    o = { port: first };
    if (typeof a[1] === 'string') {
      o.host = a[1];
      if (typeof a[2] === 'number') o.backlog = a[2];
    } else if (typeof a[1] === 'number') {
      o.backlog = a[1];
    }
  }
  if (typeof o.port === 'string') {
    if (!/^\s*\d+\s*$/.test(o.port)) return null;
  } else if (typeof o.port !== 'number') {
    return null;
  }
  if (Number(o.port) !== publicPort) return null;
  return { o: o, cb: cb };
}

function passesHandle(args) {
  var first = args[0];
  if (first === null || typeof first !== 'object') return false;
  return first.fd !== undefined || first.handle !== undefined || first._handle !== undefined;
}

function clusterPrimary() {
  try {
    var cluster = require('cluster');
    return cluster.isPrimary && Object.keys(cluster.workers || {}).length > 0;
  } catch (_) {
    return false;
  }
}

function httpKind(server) {
  var http = require('http'); // loaded already if the app made an http.Server
  if (server instanceof http.Server) return 'http';
  var tls = require('tls');
  if (server instanceof tls.Server && typeof server.closeIdleConnections === 'function') return 'https';
  return '';
}

// { plan } for a listen the hook holds back, { ungated: why } for one on PORT it cannot, or {}.
function classifyListen(server, args, publicPort) {
  var parsed = parseListen(args, publicPort);
  if (parsed) {
    var kind = httpKind(server);
    if (kind) {
      parsed.kind = kind;
      return { plan: parsed };
    }
    return {
      ungated: clusterPrimary() ? 'a cluster primary listens on PORT for its workers'
        : 'a net.Server that is not an http/https server listens on PORT'
    };
  }
  if (passesHandle(args)) return { ungated: 'a listen on a handle or fd, which may be PORT' };
  return {};
}

// Where the held-back server listens: loopback, an ephemeral port (or the test seam's).
function internalListenOptions(o, testFail) {
  var internalPort = 0;
  var m = /^listen:(\d+)$/.exec(testFail);
  if (m) internalPort = Number(m[1]);
  var opts = { port: internalPort, host: '127.0.0.1' };
  if (o.backlog !== undefined) opts.backlog = o.backlog;
  if (o.exclusive !== undefined) opts.exclusive = o.exclusive;
  if (o.signal !== undefined) opts.signal = o.signal;
  return opts;
}

// Next derives __NEXT_PRIVATE_ORIGIN (server-action self-fetches) from
// HOSTNAME + server.address().port. Point it at the reachable loopback address.
function pointNextOriginAtLoopback(env, internalPort) {
  try {
    var origin = env.__NEXT_PRIVATE_ORIGIN;
    if (origin && internalPort) {
      var u = new URL(origin);
      if (Number(u.port) === internalPort && u.hostname !== '127.0.0.1') {
        u.hostname = '127.0.0.1';
        env.__NEXT_PRIVATE_ORIGIN = u.origin;
      }
    }
  } catch (_) { /* ignore */ }
}

// ---- listen redirect ------------------------------------------------------------------
// h as for createGate, plus env and testFail. installClose: createDrain's.
function createListenRedirect(h, gate, installClose) {
  var ch = h.ch;
  var hold = h.hold;
  var origListen = h.origListen;

  function stopWatching() {
    hold.watching = false;
    try {
      if (h.net.Server.prototype.listen === knextListen) h.net.Server.prototype.listen = origListen;
    } catch (_) { /* stay installed, in pass-through mode */ }
  }

  function knextListen() {
    var args = arguments;
    var server = this;
    var seen = {};
    if (hold.watching && ch.alive) {
      try {
        seen = classifyListen(server, args, h.publicPort);
      } catch (e) {
        ch.reportError('listen inspect', e);
        seen = {};
      }
    }
    if (seen.ungated) {
      // Cannot be held back: say so, and let the launcher follow the port instead of waiting.
      stopWatching();
      ch.send({ type: 'ungated', port: h.publicPort, message: seen.ungated });
    }
    var plan = seen.plan;
    if (!plan) return origListen.apply(server, args);

    stopWatching(); // first matching listen only
    if (!h.handoff || hold.wantOpen) {
      // Observe only: the app listens on PORT itself; report when it does.
      // (Also when "open" came before the app listened: nothing to hold back.)
      observe(server, plan, h.handoff);
      return origListen.apply(server, args);
    }
    try {
      return listenInternal(server, args, plan);
    } catch (e) {
      undoInternal(server, plan);
      ch.reportError('handoff', e);
      return fallbackListen(server, args, plan);
    }
  }

  function observe(server, plan, alsoOpened) {
    ch.safe('observe', function () {
      server.once('listening', function () {
        ch.safe('report', function () {
          reportListening(server, plan, false);
          if (alsoOpened) ch.send({ type: 'opened', port: h.publicPort, direct: true });
        });
      });
    });
  }

  // The app's own listen call, unchanged (the hook gave up on this server).
  function fallbackListen(server, args, plan) {
    observe(server, plan, false);
    return origListen.apply(server, args);
  }

  function undoInternal(server, plan) {
    try { if (plan.cb && plan.cbAdded) server.removeListener('listening', plan.cb); } catch (_) { /* ignore */ }
    try { if (plan.emitHook && server.emit === plan.emitHook) plan.restoreEmit(); } catch (_) { /* ignore */ }
    hold.server = null;
  }

  // Intercept the outcome of the internal listen on this server only, so an
  // internal failure never reaches the app's 'error' handlers (Next exits on it).
  function interceptOutcome(server, args, plan) {
    var hadOwnEmit = Object.prototype.hasOwnProperty.call(server, 'emit');
    var prevEmit = server.emit;
    var settled = false;
    plan.restoreEmit = function () {
      if (hadOwnEmit) server.emit = prevEmit;
      else delete server.emit;
    };
    plan.emitHook = function (ev) {
      if (!settled && (ev === 'error' || ev === 'listening')) {
        settled = true;
        if (server.emit === plan.emitHook) plan.restoreEmit();
        if (ev === 'error') {
          var err = arguments[1];
          undoInternal(server, plan);
          ch.reportError('internal listen failed, listening on PORT directly', err);
          fallbackListen(server, args, plan);
          return true;
        }
        var restoreLog = ch.safe('banner', function () { return showPublicPort(server); });
        try {
          return prevEmit.apply(this, arguments); // Next's and the app's listeners first
        } finally {
          if (restoreLog) ch.safe('banner', restoreLog);
          ch.safe('internal listening', function () { onInternalListening(server, plan); });
        }
      }
      return prevEmit.apply(this, arguments);
    };
    server.emit = plan.emitHook;
  }

  // Next prints its URL ("- Local: http://host:port") from server.address() in its 'listening'
  // handler, before any await: while that runs, console.log shows PORT in place of the internal
  // port on those lines. Returns the undo.
  function showPublicPort(server) {
    var addr = server.address();
    var internal = addr && typeof addr === 'object' ? addr.port : 0;
    if (!internal || internal === h.publicPort) return null;
    var orig = console.log;
    var pattern = new RegExp(':' + internal + '(?![0-9])', 'g');
    var wrapper = function () {
      var args = Array.prototype.slice.call(arguments);
      for (var i = 0; i < args.length; i++) {
        if (typeof args[i] === 'string' && /(Local|Network):/.test(args[i])) {
          args[i] = args[i].replace(pattern, ':' + h.publicPort);
        }
      }
      return orig.apply(this, args);
    };
    console.log = wrapper;
    return function () { if (console.log === wrapper) console.log = orig; };
  }

  function listenInternal(server, args, plan) {
    if (h.testFail === 'throw') throw new Error('simulated hook failure (KNEXT_HOOK_TEST_FAIL=throw)');
    var internalOpts = internalListenOptions(plan.o, h.testFail);
    interceptOutcome(server, args, plan);
    hold.server = server;
    hold.plan = plan;
    if (plan.cb) {
      server.once('listening', plan.cb); // same order as net's own listen(…, cb)
      plan.cbAdded = true;
    }
    installClose(server, gate.closePublic);
    origListen.call(server, internalOpts);
    return server;
  }

  function onInternalListening(server, plan) {
    var addr = server.address();
    hold.internal = true;
    pointNextOriginAtLoopback(h.env, addr && typeof addr === 'object' ? addr.port : 0);
    reportListening(server, plan, true);
    if (hold.wantOpen || !ch.alive) gate.openPublic();
  }

  function reportListening(server, plan, redirected) {
    var addr = server.address();
    ch.send({
      type: 'listening',
      host: addr && typeof addr === 'object' ? addr.address : '',
      port: addr && typeof addr === 'object' ? addr.port : 0,
      publicPort: h.publicPort,
      publicHost: plan.o.host === undefined || plan.o.host === null ? '' : String(plan.o.host),
      protocol: plan.kind,
      redirected: redirected
    });
  }

  function install() {
    try {
      h.net.Server.prototype.listen = knextListen;
    } catch (e) {
      ch.reportError('install', e);
    }
  }

  return { install: install, stopWatching: stopWatching };
}

// ---- wiring ---------------------------------------------------------------------------
function main() {
  var env = process.env;
  var launch = takeLaunchEnv(env);
  if (!launch) return;
  var postwarm = loadPostwarm(env);
  var control = openControlSocket(launch.fdText);
  if (!control) return;

  var portText = env.PORT;
  var h = {
    env: env,
    net: control.net,
    origListen: control.net.Server.prototype.listen,
    handoff: env.KNEXT_GATE === 'handoff',
    publicPort: publicPortOf(portText),
    testFail: env.KNEXT_HOOK_TEST_FAIL || '', // test seam: "throw" | "listen:<port>"
    ch: createChannel(control.sock),
    hold: {
      watching: true,   // listen wrapper still looking for the app's server
      server: null,     // the app's http(s).Server
      plan: null,       // parsed original listen call
      internal: false,  // internal listener is up
      wantOpen: false,  // open requested (or fail-open) before internal was up
      opened: false,    // public listener created
      closed: false,    // app closed its server: never open
      pub: null         // public net.Server
    }
  };
  var ch = h.ch;
  var traffic = createTraffic(ch, launch.traffic);
  var watch = createBusyWatch(ch, traffic);
  var flush = createCacheFlush(ch, launch, postwarm);
  var gate = createGate(h);
  var redirect = createListenRedirect(h, gate, createDrain(ch, h.hold, watch, traffic));
  var preload = createNextPreload(ch, watch, env.KNEXT_NEXT_PRELOAD);
  delete env.KNEXT_NEXT_PRELOAD;

  function onMessage(type, msg) {
    if (type === 'open') gate.requestOpen();
    else if (type === 'flush') {
      if (msg && msg.idle) watch.whenQuiet(flush, QUIET_MS);
      else flush();
    }
    else if (type === 'watch') watch.set(!!(msg && msg.on));
    else if (type === 'preload') preload.start();
    else if (type === 'traffic') traffic.report(true);
    else ch.send({ type: 'error', message: 'unknown message type: ' + type.slice(0, 100) });
  }
  // fail-open: if we already hold the app's server back, open it now;
  // if not, stop redirecting so the app listens on PORT itself. A deferred preload runs now.
  function onGone() {
    if (h.hold.server) ch.safe('fail-open', gate.requestOpen);
    else redirect.stopWatching();
    ch.safe('next preload', preload.start);
  }
  if (!ch.start(onMessage, onGone)) return; // cannot even listen on the channel: do nothing at all
  preload.install();

  ch.send({
    type: 'hello',
    pid: process.pid,
    node: process.version,
    gate: h.handoff ? 'handoff' : 'none',
    port: isNaN(h.publicPort) ? 0 : h.publicPort
  });
  if (h.handoff && isNaN(h.publicPort)) {
    ch.send({ type: 'error', message: 'PORT is not a valid port (' + String(portText) + '); handoff disabled' });
  }
  if (isNaN(h.publicPort)) return; // nothing to watch for
  redirect.install();
}

try {
  main();
} catch (_) { /* never into the app */ }
