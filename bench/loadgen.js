#!/usr/bin/env node
// Load generator of the session-bridge benchmark, driven by bench/run.py.
//
// One process, socket.io-client (the client browsers run) and ioredis. It
// reads one JSON command per line on stdin and answers one JSON line on
// stdout: {"id": n, "ok": true, "result": {...}} or {"id": n, "ok": false,
// "error": "..."}. Every time is taken here with one clock (hrtime), so the
// PUBLISH / DEL it sends and the receipts it sees are measured end to end.
//
// Session i of the seeded set has id md5("session-bridge-bench:i") (see
// seed_sessions.php), user 100000+i and the room "lobby".
//
// Events are published in one of two modes: `live`, a raw PUBLISH of the
// message JSON to the channel (delivered live only), or `history`, the
// append script the PHP Emitter runs (bridge/lua/append.lua through
// EVALSHA, EVAL when Redis does not know it yet). Delivered events carry a
// trailing position argument; the handlers read the first argument only.

'use strict';

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const path = require('path');
const Redis = require('ioredis');
const { io } = require('socket.io-client');
const { serve } = require('./commands');

const CHANNEL = 'session-bridge';
const HISTORY_KEYS = [`{${CHANNEL}}:history`, `{${CHANNEL}}:retention`];
const HISTORY_DEFAULTS = [10000, 300]; // history_size, history_seconds (as the Emitter)
const APPEND_LUA = path.join(__dirname, '..', 'bridge', 'lua', 'append.lua');
const now = () => Number(process.hrtime.bigint()) / 1e6; // milliseconds

function sessionId(i) {
  return crypto.createHash('md5').update(`session-bridge-bench:${i}`).digest('hex');
}

function unknownId(i) {
  return crypto.createHash('md5').update(`unknown-session:${i}:${process.pid}`).digest('hex');
}

function open(url, transport, cookie, source, auth) {
  return io(url, {
    ...(source ? { localAddress: source } : {}),
    ...(auth ? { auth } : {}),
    transports: transport === 'websocket' ? ['websocket'] : ['polling', 'websocket'],
    forceNew: true,
    reconnection: false,
    timeout: 20000,
    extraHeaders: cookie === null ? {} : { Cookie: `PHPSESSID=${cookie}` },
  });
}

// One connect attempt. Authorized: resolves at `connect` (and, for polling,
// once the transport has been upgraded to websocket), then closes the socket.
// Refused: resolves at `connect_error` with its message. With `since`
// (auth.since = a position) and `since.expect` > 0, the socket stays open
// until it has received that many events (those appended after the
// position, replayed), and the outcome also says when (`caught_up`).
function attempt(url, transport, cookie, expectRefusal, source, since) {
  return new Promise((resolve) => {
    const started = now();
    const socket = open(url, transport, cookie, source, since && { since: since.position });
    let connectedAt = null;
    const timer = setTimeout(() => finish({ error: 'timeout' }), 30000);
    function finish(outcome) {
      clearTimeout(timer);
      socket.removeAllListeners();
      socket.io.engine && socket.io.engine.removeAllListeners('upgrade');
      socket.disconnect();
      resolve(outcome);
    }
    if (since && since.expect) catchUp(socket, since, started, finish);
    socket.on('connect_error', (err) => {
      if (expectRefusal) finish({ refused: err.message, latency: now() - started });
      else finish({ error: `connect_error:${err.message}` });
    });
    socket.on('connect', () => {
      connectedAt = now();
      if (expectRefusal) return finish({ error: 'accepted' });
      const engine = socket.io.engine;
      if (since && since.expect) return since.connected(connectedAt - started);
      if (transport === 'websocket' || engine.transport.name === 'websocket') {
        return finish({ latency: connectedAt - started, upgraded: connectedAt - started });
      }
      engine.once('upgrade', () => finish({ latency: connectedAt - started,
        upgraded: now() - started }));
      return undefined;
    });
  });
}

// Counts the events a socket opened with auth.since receives; finishes the
// attempt once it has `since.expect` of them, or 3 s after connecting.
function catchUp(socket, since, started, finish) {
  let got = 0;
  let latency = null;
  let timer = null;
  const done = () => finish({ latency, caught_up: now() - started, replayed: got });
  since.connected = (ms) => {
    latency = ms;
    if (got >= since.expect) return done();
    timer = setTimeout(() => finish({ error: 'replay_timeout' }), 3000);
    return undefined;
  };
  socket.on('bench', () => {
    got += 1;
    if (latency !== null && got >= since.expect) { clearTimeout(timer); done(); }
  });
}

async function connectLoop(cmd) {
  const { url, transport, concurrency, duration, mode } = cmd;
  const pool = cmd.sessions || 1;
  let next = cmd.first || 0;
  const latencies = [];
  const upgraded = [];
  const caughtUp = [];
  const errors = {};
  const refusals = {};
  let done = 0;
  const started = now();
  const deadline = started + duration * 1000;
  async function worker() {
    while (now() < deadline) {
      const k = next;
      next += 1;
      let cookie = sessionId(k % pool);
      if (mode === 'nocookie') cookie = null;
      else if (mode === 'unknown') cookie = unknownId(k);
      // auth 'since': closes at `connect` as without; 'since-replay': waits for the replay.
      const since = cmd.auth && cmd.auth.startsWith('since')
        ? appender.since(cmd.auth === 'since-replay') : null;
      const outcome = await attempt(url, transport, cookie, mode !== 'auth', cmd.source, since);
      if (outcome.error) {
        errors[outcome.error] = (errors[outcome.error] || 0) + 1;
      } else {
        done += 1;
        latencies.push(outcome.latency);
        if (outcome.upgraded !== undefined) upgraded.push(outcome.upgraded);
        if (outcome.caught_up !== undefined) caughtUp.push(outcome.caught_up);
        if (outcome.refused) refusals[outcome.refused] = (refusals[outcome.refused] || 0) + 1;
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (now() - started) / 1000;
  return { done, elapsed, rate: done / elapsed, latencies, upgraded, caught_up: caughtUp,
    errors, refusals, next };
}

// --- held sockets: memory, fan-out, PUBLISH latency, logout ---

const held = []; // index = session index; null once closed
let fan = null; // the fan-out or single-user wait in progress
let logoutWait = null;
const lost = {}; // disconnect reasons of held sockets (expected: logout, release)
let redis = null;

function alive() {
  return held.reduce((n, s) => n + (s ? 1 : 0), 0);
}

function holdOne(url, i) {
  return new Promise((resolve) => {
    const socket = open(url, 'websocket', sessionId(i));
    const timer = setTimeout(() => { socket.close(); resolve(false); }, 30000);
    socket.on('connect_error', (err) => {
      clearTimeout(timer);
      socket.close();
      resolve(err.message);
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      held[i] = socket;
      resolve(true);
    });
    socket.on('bench', (data) => {
      if (fan && data.seq === fan.seq && (fan.only === undefined || fan.only === i)) {
        if (fan.first === null) fan.first = now();
        fan.got.add(i);
        fan.remaining -= 1;
        if (fan.remaining === 0) fan.resolve(now());
      }
    });
    socket.on('session_ended', () => {
      if (logoutWait && logoutWait.index === i) logoutWait.ended = now();
    });
    socket.on('disconnect', (reason) => {
      held[i] = null;
      lost[reason] = (lost[reason] || 0) + 1;
      if (fan && !fan.got.has(i) && (fan.only === undefined || fan.only === i)) {
        fan.lost += 1; // a socket that went away cannot receive the event
        fan.remaining -= 1;
        if (fan.remaining === 0) fan.resolve(now());
      }
      if (logoutWait && logoutWait.index === i) logoutWait.resolve(now());
    });
  });
}

async function hold(cmd) {
  // Opens sockets for session indexes [first, n) (first: by default the next
  // unused index), so `hold n=5000` after `hold n=1000` adds 4,000 sockets.
  const { url, n } = cmd;
  const concurrency = cmd.concurrency || 50;
  const started = now();
  let next = cmd.first === undefined ? held.length : cmd.first;
  const failures = {};
  async function worker() {
    while (next < n) {
      const i = next;
      next += 1;
      const outcome = await holdOne(url, i);
      if (outcome !== true) failures[outcome || 'timeout'] = (failures[outcome || 'timeout'] || 0) + 1;
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { held: alive(), seconds: (now() - started) / 1000, failures };
}

function release(cmd) {
  // Closes the sockets of session indexes [keep, until) (until: all).
  const until = cmd.until === undefined ? held.length : cmd.until;
  for (let i = cmd.keep; i < Math.min(until, held.length); i += 1) {
    if (held[i]) {
      held[i].removeAllListeners('disconnect');
      held[i].disconnect();
      held[i] = null;
    }
  }
  if (cmd.until === undefined) held.length = Math.min(held.length, cmd.keep);
  return { held: alive() };
}

function publish(message, mode = 'live') {
  const json = JSON.stringify(message);
  if (mode === 'history') return redis.historyAppend(...HISTORY_KEYS, json, ...HISTORY_DEFAULTS);
  if (mode === 'live') return redis.publish(CHANNEL, json);
  throw new Error(`unknown publish mode ${mode}`);
}

// Appends events to room "lobby" through the history script at a steady
// rate, as PHP pages would meanwhile. since() is a position as a page would
// have rendered it: the one `lag` appends back, so the socket that connects
// with it is owed at least `lag` events.
const appender = {
  timer: null,
  positions: [],
  lag: 3,
  count: 0,
  start(cmd) {
    this.stop();
    this.lag = cmd.lag || 3;
    const tick = async () => {
      this.count += 1;
      const seq = `app-${this.count}`;
      const position = await publish({ event: 'bench', data: { seq, ...PAYLOAD }, room: 'lobby' },
        'history');
      this.positions.push(position);
      if (this.positions.length > 64) this.positions.shift();
    };
    this.timer = setInterval(() => { tick().catch(() => {}); }, 1000 / (cmd.rate || 20));
    return Promise.all(Array.from({ length: this.lag + 1 }, tick)).then(() => ({}));
  },
  since(wait) {
    const at = this.positions.length - 1 - this.lag;
    return { position: this.positions[Math.max(at, 0)], expect: wait ? this.lag : 0 };
  },
  stop() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    return { appended: this.count };
  },
};

function waitFor(expect, seq, only, timeoutMs) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => { const f = fan; fan = null; resolve({ timeout: true, f }); },
      timeoutMs);
    fan = { seq, remaining: expect, first: null, only, got: new Set(), lost: 0, resolve: (at) => {
      clearTimeout(timer);
      const f = fan;
      fan = null;
      resolve({ at, f });
    } };
  });
}

const PAYLOAD = { title: 'Order shipped', body: 'Your order #A-10492 left our warehouse today.',
  url: '/orders/A-10492', level: 'info' };

async function fanout(cmd) {
  const expect = alive();
  const results = [];
  for (let r = 0; r < cmd.reps; r += 1) {
    const seq = `fan-${r}-${Date.now()}`;
    const waiting = waitFor(alive(), seq, undefined, 30000);
    const started = now();
    await publish({ event: 'bench', data: { seq, ...PAYLOAD }, room: cmd.room }, cmd.mode);
    const { at, f, timeout } = await waiting;
    results.push(timeout
      ? { timeout: true, missing: f.remaining, lost: f.lost }
      : { all_ms: at - started, first_ms: f.first - started, lost: f.lost });
    await sleep(cmd.gap_ms || 300);
  }
  return { sockets: expect, results, alive_after: alive(), disconnects: { ...lost } };
}

async function userLatency(cmd) {
  const indexes = held.map((s, i) => (s ? i : -1)).filter((i) => i >= 0 && i < cmd.below);
  if (!indexes.length) throw new Error('no held sockets to publish to');
  // Publish modes take turns (A/B/A/B...) so that machine noise hits each alike.
  const modes = cmd.modes || ['live'];
  const latencies = [];
  const byMode = Object.fromEntries(modes.map((m) => [m, []]));
  let timeouts = 0;
  for (let k = 0; k < cmd.count; k += 1) {
    const i = indexes[(k * 7919) % indexes.length];
    const mode = modes[k % modes.length];
    const seq = `user-${k}-${Date.now()}`;
    const waiting = waitFor(1, seq, i, 5000);
    const started = now();
    await publish({ event: 'bench', data: { seq, ...PAYLOAD }, user: 100000 + i }, mode);
    const { at, timeout } = await waiting;
    if (timeout) timeouts += 1;
    else { latencies.push(at - started); byMode[mode].push(at - started); }
    await sleep(cmd.gap_ms || 5);
  }
  return { latencies, by_mode: byMode, timeouts };
}

async function logout(cmd) {
  // Logs out the held sockets of session indexes [first, first + count).
  const indexes = held.map((s, i) => (s ? i : -1))
    .filter((i) => i >= cmd.first && i < cmd.first + cmd.count);
  const latencies = [];
  let timeouts = 0;
  let ended = 0;
  for (const i of indexes) {
    const done = new Promise((resolve) => {
      const timer = setTimeout(() => resolve(null), 10000);
      logoutWait = { index: i, ended: null, resolve: (at) => { clearTimeout(timer); resolve(at); } };
    });
    const started = now();
    await redis.del(sessionId(i)); // what Predis\Session\Handler::destroy() sends
    const at = await done;
    if (at === null) timeouts += 1;
    else latencies.push(at - started);
    if (logoutWait.ended !== null) ended += 1;
    logoutWait = null;
    await sleep(cmd.gap_ms || 5);
  }
  return { latencies, timeouts, session_ended_seen: ended, sockets_before: indexes.length };
}

// The Sec-WebSocket-Extensions this client offers (as a browser does), and
// what a given server answered (the extensions the client ended up with).
async function probe(cmd) {
  const offered = await new Promise((resolve) => {
    const server = http.createServer();
    server.on('upgrade', (req, sock) => {
      resolve(req.headers['sec-websocket-extensions'] || '');
      sock.destroy();
      server.close();
    });
    server.listen(0, '127.0.0.1', () => {
      const s = open(`http://127.0.0.1:${server.address().port}`, 'websocket', 'x');
      s.on('connect_error', () => s.close());
    });
  });
  let negotiated = null;
  if (cmd.url) {
    negotiated = await new Promise((resolve) => {
      const s = open(cmd.url, 'websocket', sessionId(0));
      s.on('connect', () => {
        const ws = s.io.engine.transport.ws;
        resolve(ws.extensions || '');
        s.disconnect();
      });
      s.on('connect_error', (err) => { resolve(`connect_error:${err.message}`); s.close(); });
    });
  }
  return { offered, negotiated };
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const COMMANDS = {
  connect_loop: connectLoop,
  hold,
  release,
  fanout,
  user_latency: userLatency,
  logout,
  probe,
  appender_start: (cmd) => appender.start(cmd),
  appender_stop: async () => appender.stop(),
  redis: async (cmd) => {
    redis = new Redis(cmd.url);
    // EVALSHA, and EVAL when Redis answers NOSCRIPT: what the PHP Emitter does.
    redis.defineCommand('historyAppend', { numberOfKeys: 2, lua: fs.readFileSync(APPEND_LUA, 'utf8') });
    await redis.ping();
    return {};
  },
  ping: async () => ({ pid: process.pid, held: alive(), disconnects: { ...lost } }),
  quit: async () => {
    for (const s of held) if (s) s.disconnect();
    if (redis) redis.disconnect();
    setTimeout(() => process.exit(0), 50);
    return {};
  },
};

serve(COMMANDS);
