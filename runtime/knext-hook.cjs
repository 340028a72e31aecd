'use strict';
// knext-hook.cjs: the in-process half of knext-launch.
// Loaded with NODE_OPTIONS=--require /abs/path/knext-hook.cjs. Dependency-free.
// Protocol and behaviour: see runtime/README.md. Rule one: never throw into the app.
// Every entry point is wrapped; on any internal failure the app still ends up
// listening on its PORT (the hook falls back to the app's own listen call).

(function knextHook() {
  var env = process.env;
  var fdText;
  try {
    fdText = env.KNEXT_CONTROL_FD;
    if (fdText === undefined) return; // not under knext-launch: zero behaviour change
    // Children (and their copy of this hook via NODE_OPTIONS) must not grab
    // whatever their own fd N is. The fd itself is close-on-exec in node.
    delete env.KNEXT_CONTROL_FD;
  } catch (_) {
    return;
  }
  // Post-warm V8 code cache for CommonJS (runtime/knext-postwarm.cjs), before the app compiles anything.
  var postwarm = null;
  // --prewarm: where to record the files loaded up to the flush, for the page-cache prewarm.
  var manifestPath = env.KNEXT_MANIFEST_PATH || '';
  var manifestBuildId = env.KNEXT_BUILD_ID || '';
  delete env.KNEXT_MANIFEST_PATH;
  delete env.KNEXT_BUILD_ID;
  if (env.KNEXT_COMPILE_CACHE === 'postwarm') { try { postwarm = require('./knext-postwarm.cjs'); postwarm.install(); } catch (_) { postwarm = null; } }

  var net, sock;
  try {
    if (!/^\d+$/.test(fdText)) return;
    var fd = Number(fdText);
    if (fd < 3 || fd > 65535) return; // 0-2 are stdio: invalid
    var kind = require('fs').fstatSync(fd);
    if (!kind.isSocket() && !kind.isFIFO()) return; // e.g. a tty or a file: not ours
    net = require('net');
    sock = new net.Socket({ fd: fd, readable: true, writable: true });
    sock.unref(); // never keep the event loop alive
  } catch (_) {
    return; // not an open socket/pipe: behave as if absent
  }

  var origListen = net.Server.prototype.listen;
  var pid = process.pid;
  var handoff = env.KNEXT_GATE === 'handoff';
  var portText = env.PORT;
  var publicPort = /^\s*\d+\s*$/.test(portText || '') ? Number(portText) : NaN;
  if (!(publicPort >= 1 && publicPort <= 65535)) publicPort = NaN;
  var testFail = env.KNEXT_HOOK_TEST_FAIL || ''; // test seam: "throw" | "listen:<port>"

  var st = {
    alive: true,      // control channel usable
    watching: true,   // listen wrapper still looking for the app's server
    server: null,     // the app's http(s).Server
    plan: null,       // parsed original listen call
    internal: false,  // internal listener is up
    wantOpen: false,  // open requested (or fail-open) before internal was up
    opened: false,    // public listener created
    closed: false,    // app closed its server: never open
    pub: null,        // public net.Server
    buf: ''
  };

  function send(obj) {
    try {
      if (!st.alive || sock.destroyed || !sock.writable) return;
      sock.write(JSON.stringify(obj) + '\n');
    } catch (_) { /* ignore */ }
  }

  function errText(e) {
    try {
      if (e && e.code) return String(e.code) + ': ' + String(e.message);
      return String(e && e.message ? e.message : e);
    } catch (_) {
      return 'unknown error';
    }
  }

  function reportError(where, e) {
    send({ type: 'error', message: where + ': ' + errText(e) });
  }

  function safe(where, fn) {
    try {
      return fn();
    } catch (e) {
      reportError(where, e);
      return undefined;
    }
  }

  // ---- control channel ----------------------------------------------------
  function channelGone() {
    if (!st.alive) return;
    st.alive = false;
    // fail-open: if we already hold the app's server back, open it now;
    // if not, stop redirecting so the app listens on PORT itself.
    if (st.server) safe('fail-open', requestOpen);
    else stopWatching();
  }

  function onLine(line) {
    line = line.trim();
    if (!line) return;
    var type = line;
    if (line.charAt(0) === '{') {
      var msg;
      try { msg = JSON.parse(line); } catch (_) { msg = null; }
      if (!msg || typeof msg.type !== 'string') {
        send({ type: 'error', message: 'bad message: ' + line.slice(0, 200) });
        return;
      }
      type = msg.type;
    }
    if (type === 'open') requestOpen();
    else if (type === 'flush') flush();
    else if (type === 'watch') watchBusy(!!(msg && msg.on));
    else send({ type: 'error', message: 'unknown message type: ' + type.slice(0, 100) });
  }

  try {
    sock.setEncoding('utf8');
    sock.on('data', function (chunk) {
      safe('control read', function () {
        st.buf += chunk;
        if (st.buf.length > 65536 && st.buf.indexOf('\n') < 0) st.buf = ''; // runaway line
        var nl;
        while ((nl = st.buf.indexOf('\n')) >= 0) {
          var line = st.buf.slice(0, nl);
          st.buf = st.buf.slice(nl + 1);
          safe('message', function () { onLine(line); });
        }
      });
    });
    sock.on('end', function () { safe('control eof', channelGone); });
    sock.on('error', function () { safe('control error', channelGone); });
    sock.on('close', function () { safe('control close', channelGone); });
  } catch (e) {
    return; // cannot even listen on the channel: do nothing at all
  }

  send({
    type: 'hello',
    pid: pid,
    node: process.version,
    gate: handoff ? 'handoff' : 'none',
    port: isNaN(publicPort) ? 0 : publicPort
  });
  if (handoff && isNaN(publicPort)) {
    send({ type: 'error', message: 'PORT is not a valid port (' + String(portText) + '); handoff disabled' });
  }
  if (isNaN(publicPort)) return; // nothing to watch for

  // ---- flush ----------------------------------------------------------------
  // One absolute path per line in first-load order (require.cache keeps insertion order);
  // temp file + rename, so a reader never sees half of it.
  function writeManifest() {
    if (!manifestPath) return;
    try {
      var fs = require('fs');
      var lines = ['# knext-prewarm-manifest v1'];
      if (/^[A-Za-z0-9_-]{1,64}$/.test(manifestBuildId)) lines.push('# build-id ' + manifestBuildId);
      Object.keys(require.cache).forEach(function (p) {
        if (p.charAt(0) === '/' && p.indexOf('\n') < 0 && p.slice(-1) !== '\r') lines.push(p);
      });
      var tmp = manifestPath + '.' + process.pid + '.tmp';
      fs.writeFileSync(tmp, lines.join('\n') + '\n');
      fs.renameSync(tmp, manifestPath);
    } catch (e) {
      reportError('manifest', e);
    }
  }

  function flush() {
    writeManifest();
    var mod = require('module');
    var dir = '';
    var pw; // last key of "flushed": the launcher's flat parser takes the first "ok"/"error"
    if (postwarm) { try { pw = postwarm.save(); } catch (e) { pw = { ok: false, error: errText(e) }; } }
    try {
      if (typeof mod.getCompileCacheDir === 'function') dir = mod.getCompileCacheDir() || '';
    } catch (_) { /* ignore */ }
    if (typeof mod.flushCompileCache !== 'function') {
      send({ type: 'flushed', ok: false, error: 'module.flushCompileCache is not available in node ' + process.version, dir: dir, postwarm: pw });
      return;
    }
    try {
      mod.flushCompileCache();
      send({ type: 'flushed', ok: true, dir: dir, postwarm: pw });
    } catch (e) {
      send({ type: 'flushed', ok: false, error: errText(e), dir: dir, postwarm: pw });
    }
  }

  // ---- listen interception --------------------------------------------------
  function stopWatching() {
    st.watching = false;
    try {
      if (net.Server.prototype.listen === knextListen) net.Server.prototype.listen = origListen;
    } catch (_) { /* stay installed, in pass-through mode */ }
  }

  // Mirrors net's normalizeArgs for the shapes an HTTP server uses.
  function parseListen(args) {
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

  function isHttpServer(server) {
    var http = require('http'); // loaded already if the app made an http.Server
    if (server instanceof http.Server) return 'http';
    var tls = require('tls');
    if (server instanceof tls.Server && typeof server.closeIdleConnections === 'function') return 'https';
    return '';
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

  function knextListen() {
    var args = arguments;
    var server = this;
    var plan = null;
    var ungated = '';
    if (st.watching && st.alive) {
      try {
        var parsed = parseListen(args);
        if (parsed) {
          var kind = isHttpServer(server);
          if (kind) {
            plan = parsed;
            plan.kind = kind;
          } else {
            ungated = clusterPrimary() ? 'a cluster primary listens on PORT for its workers'
              : 'a net.Server that is not an http/https server listens on PORT';
          }
        } else if (passesHandle(args)) {
          ungated = 'a listen on a handle or fd, which may be PORT';
        }
      } catch (e) {
        reportError('listen inspect', e);
        plan = null;
      }
    }
    if (ungated) {
      // Cannot be held back: say so, and let the launcher follow the port instead of waiting.
      stopWatching();
      send({ type: 'ungated', port: publicPort, message: ungated });
    }
    if (!plan) return origListen.apply(server, args);

    stopWatching(); // first matching listen only
    if (!handoff || st.wantOpen) {
      // Observe only: the app listens on PORT itself; report when it does.
      // (Also when "open" came before the app listened: nothing to hold back.)
      observe(server, plan, handoff);
      return origListen.apply(server, args);
    }
    try {
      return listenInternal(server, args, plan);
    } catch (e) {
      undoInternal(server, plan);
      reportError('handoff', e);
      return fallbackListen(server, args, plan);
    }
  }

  function observe(server, plan, alsoOpened) {
    safe('observe', function () {
      server.once('listening', function () {
        safe('report', function () {
          reportListening(server, plan, false);
          if (alsoOpened) send({ type: 'opened', port: publicPort, direct: true });
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
    st.server = null;
  }

  function listenInternal(server, args, plan) {
    if (testFail === 'throw') throw new Error('simulated hook failure (KNEXT_HOOK_TEST_FAIL=throw)');
    var internalPort = 0;
    var m = /^listen:(\d+)$/.exec(testFail);
    if (m) internalPort = Number(m[1]);
    var o = plan.o;
    var internalOpts = { port: internalPort, host: '127.0.0.1' };
    if (o.backlog !== undefined) internalOpts.backlog = o.backlog;
    if (o.exclusive !== undefined) internalOpts.exclusive = o.exclusive;
    if (o.signal !== undefined) internalOpts.signal = o.signal;

    // Intercept the outcome of the internal listen on this server only, so an
    // internal failure never reaches the app's 'error' handlers (Next exits on it).
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
          reportError('internal listen failed, listening on PORT directly', err);
          fallbackListen(server, args, plan);
          return true;
        }
        try {
          return prevEmit.apply(this, arguments); // Next's and the app's listeners first
        } finally {
          safe('internal listening', function () { onInternalListening(server, plan); });
        }
      }
      return prevEmit.apply(this, arguments);
    };
    server.emit = plan.emitHook;

    st.server = server;
    st.plan = plan;
    if (plan.cb) {
      server.once('listening', plan.cb); // same order as net's own listen(…, cb)
      plan.cbAdded = true;
    }
    installClose(server);
    origListen.call(server, internalOpts);
    return server;
  }

  // ---- drain ----------------------------------------------------------------
  // Node's close() ends idle keep-alive connections, but one busy at that moment stays open
  // after its response until keepAliveTimeout (5 s), and node exits that much later. As Go's
  // Server.Shutdown does: once closing, responses not yet started say "Connection: close"
  // (node then ends the connection after them) and connections that go idle are closed.
  var inflight = new Set();
  // Background warming: the launcher wants to know when user requests (not warm-ups) are in
  // flight. Counted always (one header read per request), told only on busy/idle transitions
  // and only while watching.
  var users = 0;
  var watching = false;
  function watchBusy(on) {
    watching = on;
    if (on) send({ type: users > 0 ? 'busy' : 'idle' });
  }
  function countUser(req, res) {
    if (req.headers['x-knext-warmup'] === '1') return;
    if (++users === 1 && watching) send({ type: 'busy' });
    res.once('close', function () {
      if (--users === 0 && watching) send({ type: 'idle' });
    });
  }
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
      if (st.closed) return endAfter(server, res);
      try { countUser(req, res); } catch (_) { /* never into the app */ }
      inflight.add(res);
      res.once('close', function () { inflight.delete(res); });
    });
  }
  function drain(server) {
    var list = Array.from(inflight);
    inflight.clear();
    for (var i = 0; i < list.length; i++) endAfter(server, list[i]);
  }

  function installClose(server) {
    trackRequests(server);
    var hadOwn = Object.prototype.hasOwnProperty.call(server, 'close');
    var prevClose = server.close;
    var hook = function close() {
      safe('close', function () { closePublic(server); });
      safe('drain', function () { drain(server); });
      try {
        if (server.close === hook) {
          if (hadOwn) server.close = prevClose;
          else delete server.close;
        }
      } catch (_) { /* ignore */ }
      return prevClose.apply(this, arguments);
    };
    server.close = hook;
    server.once('close', function () { safe('close', closePublic); });
  }

  function onInternalListening(server, plan) {
    var addr = server.address();
    var internalPort = addr && typeof addr === 'object' ? addr.port : 0;
    st.internal = true;
    // Next derives __NEXT_PRIVATE_ORIGIN (server-action self-fetches) from
    // HOSTNAME + server.address().port. Point it at the reachable loopback address.
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
    reportListening(server, plan, true);
    if (st.wantOpen || !st.alive) openPublic();
  }

  function reportListening(server, plan, redirected) {
    var addr = server.address();
    send({
      type: 'listening',
      host: addr && typeof addr === 'object' ? addr.address : '',
      port: addr && typeof addr === 'object' ? addr.port : 0,
      publicPort: publicPort,
      publicHost: plan.o.host === undefined || plan.o.host === null ? '' : String(plan.o.host),
      protocol: plan.kind,
      redirected: redirected
    });
  }

  function requestOpen() {
    if (handoff && st.watching) {
      st.wantOpen = true; // the app has not listened yet: let it listen on PORT directly
      return;
    }
    if (!handoff || !st.server) {
      // Nothing held back: the app's listener (if any) is the public one.
      if (st.alive && !st.watching) send({ type: 'opened', port: publicPort, direct: true });
      return;
    }
    st.wantOpen = true;
    if (st.opened && st.pub && st.pub.listening) {
      send({ type: 'opened', port: publicPort }); // repeated "open": idempotent
      return;
    }
    if (st.internal) openPublic();
  }

  function openPublic() {
    if (st.opened || st.closed || !st.server) return;
    var server = st.server;
    st.opened = true;
    var pub;
    try {
      pub = net.createServer({ allowHalfOpen: server.allowHalfOpen, pauseOnConnect: server.pauseOnConnect });
      // Copy the per-accept settings net.Server applies (stored, already-normalised values).
      pub.noDelay = server.noDelay;
      pub.keepAlive = server.keepAlive;
      pub.keepAliveInitialDelay = server.keepAliveInitialDelay;
      pub.highWaterMark = server.highWaterMark;
      if (server.blockList) pub.blockList = server.blockList;
    } catch (e) {
      reportError('public listener options', e);
      pub = net.createServer(); // minimal fallback
    }
    pub.on('connection', function (conn) { onPublicConnection(server, pub, conn); });
    st.pub = pub;
    var up = false;
    pub.on('error', function (err) {
      reportError(up ? 'public listener' : 'public listen failed', err);
      if (!up) st.pub = null;
      // As without the hook: the app's server gets its listen/accept errors.
      server.emit('error', err);
    });
    pub.unref(); // liveness follows the app's own server handle
    origListen.call(pub, publicListenOptions(st.plan.o), function () {
      up = true;
      safe('opened', function () {
        var a = pub.address();
        send({ type: 'opened', port: a && typeof a === 'object' ? a.port : publicPort });
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

  // Closing a listener resets the connections still in the kernel's accept queue: their
  // requests were sent and would be lost. So the public listener closes only after a full
  // poll phase accepted nothing more (two setImmediate hops span one), and the app server's
  // close waits for that on a borrowed connection count.
  var publicAccepted = 0;
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
    st.closed = true;
    var pub = st.pub;
    st.pub = null;
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
          try { pub.close(); } catch (e) { reportError('close public', e); }
          release();
        });
      });
    })();
  }

  try {
    net.Server.prototype.listen = knextListen;
  } catch (e) {
    reportError('install', e);
  }
})();
