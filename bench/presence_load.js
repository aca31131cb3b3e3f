#!/usr/bin/env node
// Load generator of bench/presence.py, for the sessions written by
// presence_seed.php (session i: md5("presence-bench:i")). Driven through the
// command loop of commands.js (one JSON command a line on stdin, one answer a
// line on stdout, each carrying the command's id); nothing else is written to
// stdout. Commands:
//
//   {"cmd": "hold", "url", "from", "to", "concurrency", "drain_ms"}
//       open raw sockets [from, to): lean websocket clients that connect to
//       Socket.IO and then only drain (they answer pings and look at nothing
//       but frame headers and short frames). They read what arrives at once,
//       as a browser does; with drain_ms > 0 they read at most every drain_ms,
//       which fills the kernel's buffers and makes the daemon's writes fail
//       and pile up in its own buffer, i.e. coalesce by themselves.
//   {"cmd": "observe", "url", "index"}
//       open the observer: the official socket.io-client, which timestamps
//       every `presence` event. Opened last, it is the last socket of the
//       room on the daemon, so it is reached last by every fan-out. It runs in
//       a process of its own (bench/presence.py starts a second one of this
//       script), so that its timestamps do not wait for this process to read
//       the 10,000 raw sockets.
//   {"cmd": "seen"}
//       the observer's presence events so far, [[ms, payload], ...], and forget them.
//   {"cmd": "churn", "url", "rate", "seconds", "pool": [from, to], "delay", "backlog"}
//       open `backlog` raw sockets of the pool, then every 1/rate s,
//       alternately open one of the next session (a join, at the moment its
//       Socket.IO CONNECT is written: the daemon has it from then on) or
//       close the oldest one opened by the churn (a leave, at the close);
//       answers {joined_at: {user: ms}, left_at: {user: ms}, ...}. Times are
//       CLOCK_MONOTONIC in ms, the same clock in every process of the machine.
//   {"cmd": "counters"}
//       frames, bytes and pings the raw sockets received so far; sockets held.
//   {"cmd": "quit"}
//       close every socket, exit.

'use strict';

const crypto = require('crypto');
const net = require('net');
const { io } = require('socket.io-client');
const { serve } = require('./commands');

let drainMs = 0;
const now = () => Number(process.hrtime.bigint()) / 1e6; // ms
const sid = (i) => crypto.createHash('md5').update(`presence-bench:${i}`).digest('hex');
const held = new Map(); // index -> raw socket
const connectSent = new Map(); // index -> ms its Socket.IO CONNECT was written
const presence = []; // [receivedAt, payload] seen by the observer
const paused = [];
const counters = { frames: 0, bytes: 0, pings: 0 };
let observer = null;

// Lazy readers: a socket that read something pauses for drainMs, then reads what
// arrived meanwhile in one go; resumed a few at a time, so that no burst of reads
// holds up the observer.
setInterval(() => {
  const due = now() - drainMs;
  while (paused.length && paused[0][0] <= due) {
    const sock = paused.shift()[1];
    if (!sock.destroyed) sock.resume();
  }
}, 5).unref();

// A client frame: FIN + text, masked with a zero key (RFC 6455 allows any key).
const clientFrame = (text) => Buffer.concat([Buffer.from([0x81, 0x80 | text.length, 0, 0, 0, 0]),
  Buffer.from(text)]);
const PONG = clientFrame('3');
const CONNECT = clientFrame('40');

// Frame headers are parsed, payloads over 256 bytes skipped unread; short ones
// (pings, Engine.IO OPEN, Socket.IO CONNECT replies, presence events) handed
// to onShort(firstBytes).
function frameParser(onShort) {
  let carry = null;
  let skip = 0;
  return (chunk) => {
    counters.bytes += chunk.length;
    const b = carry ? Buffer.concat([carry, chunk]) : chunk;
    carry = null;
    let p = Math.min(skip, b.length);
    skip -= p;
    while (p < b.length) {
      const left = b.length - p;
      if (left < 2) { carry = b.subarray(p); return; }
      let len = b[p + 1] & 0x7f;
      let h = 2;
      if (len === 126) {
        if (left < 4) { carry = b.subarray(p); return; }
        len = b.readUInt16BE(p + 2); h = 4;
      } else if (len === 127) {
        if (left < 10) { carry = b.subarray(p); return; }
        len = Number(b.readBigUInt64BE(p + 2)); h = 10;
      }
      counters.frames += 1;
      if (len <= 256) {
        if (left < h + len) { carry = b.subarray(p); counters.frames -= 1; return; }
        onShort(b, p + h, len);
        p += h + len;
      } else if (left >= h + len) {
        p += h + len;
      } else {
        if (left < h) { carry = b.subarray(p); counters.frames -= 1; return; }
        skip = len - (left - h);
        p = b.length;
      }
    }
  };
}

function openRaw(url, i) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const sock = net.connect(Number(port), hostname);
    let header = Buffer.alloc(0);
    let connected = false;
    const done = (result) => { if (!connected) { connected = true; resolve(result); } };
    const parse = frameParser((b, at, len) => {
      const c0 = b[at];
      if (c0 === 0x32 && len === 1) { counters.pings += 1; sock.write(PONG); } // "2": ping
      else if (c0 === 0x30) { connectSent.set(i, now()); sock.write(CONNECT); } // EIO open
      else if (c0 === 0x34 && b[at + 1] === 0x30) { held.set(i, sock); done(true); } // "40"
      else if (c0 === 0x34 && b[at + 1] === 0x34) { // "44": refused
        const message = JSON.parse(b.toString('utf8', at + 2, at + len)).message;
        sock.destroy(); done(message);
      }
    });
    sock.setNoDelay(true);
    sock.on('error', (err) => done(err.code || String(err)));
    sock.on('close', () => { held.delete(i); done('closed'); });
    sock.on('connect', () => sock.write(
      `GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: ${hostname}:${port}\r\n`
      + 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n'
      + `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\n`
      + `Cookie: PHPSESSID=${sid(i)}\r\n\r\n`));
    sock.on('data', (chunk) => {
      if (header !== null) {
        header = Buffer.concat([header, chunk]);
        const end = header.indexOf('\r\n\r\n');
        if (end < 0) return;
        if (!header.subarray(0, 12).toString().includes('101')) {
          sock.destroy(); done(`http ${header.subarray(9, 12)}`); return;
        }
        chunk = header.subarray(end + 4);
        header = null;
      }
      parse(chunk);
      if (connected && drainMs > 0) { sock.pause(); paused.push([now(), sock]); }
    });
  });
}

async function hold(cmd) {
  drainMs = cmd.drain_ms || 0;
  const started = now();
  let next = cmd.from;
  const failures = {};
  async function worker() {
    while (next < cmd.to) {
      const i = next;
      next += 1;
      const ok = await openRaw(cmd.url, i);
      if (ok !== true) failures[ok] = (failures[ok] || 0) + 1;
    }
  }
  await Promise.all(Array.from({ length: cmd.concurrency || 50 }, worker));
  return { held: held.size, seconds: (now() - started) / 1000, failures };
}

function observe(cmd) {
  return new Promise((resolve) => {
    observer = io(cmd.url, { transports: ['websocket'], forceNew: true, reconnection: false,
      timeout: 60000, extraHeaders: { Cookie: `PHPSESSID=${sid(cmd.index)}` } });
    observer.on('presence', (p) => presence.push([now(), p]));
    observer.once('connect', () => resolve({ connected: true }));
    observer.once('connect_error', (err) => resolve({ connected: false, error: err.message }));
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function churn(cmd) {
  const [from, to] = cmd.pool;
  const joinedAt = new Map(); // user id -> ms of the CONNECT reply
  const leftAt = new Map(); // user id -> ms of the close
  const mine = [];
  let next = from;
  const period = 1000 / cmd.rate;
  const pending = [];
  const failures = {};
  function join() {
    const i = next;
    next = next + 1 < to ? next + 1 : from;
    const opened = openRaw(cmd.url, i).then((ok) => {
      if (ok === true) { joinedAt.set(100000 + i, connectSent.get(i)); mine.push(i); } else failures[ok] = (failures[ok] || 0) + 1;
    });
    pending.push(opened);
    return opened;
  }
  // A backlog first, so that each churning socket lives backlog / (rate / 2) seconds.
  for (let k = 0; k < cmd.backlog; k += 1) await join();
  await sleep(500);
  const started = now();
  let late = 0;
  for (let k = 0; now() - started < cmd.seconds * 1000; k += 1) {
    const due = started + k * period;
    if (due > now()) await sleep(due - now()); else late = Math.max(late, now() - due);
    if (k % 2 === 0 || mine.length === 0) {
      join();
    } else {
      const i = mine.shift();
      held.get(i).destroy();
      held.delete(i);
      leftAt.set(100000 + i, now());
    }
  }
  const actualSeconds = (now() - started) / 1000;
  await Promise.all(pending);
  await sleep((cmd.delay + 2) * 1000);
  const result = { joined_at: Object.fromEntries(joinedAt), left_at: Object.fromEntries(leftAt),
    failures, generator_late_ms: late, churn_seconds: actualSeconds };
  for (const i of mine) { held.get(i).destroy(); held.delete(i); }
  return result;
}

const COMMANDS = {
  hold,
  observe,
  churn,
  seen: async () => presence.splice(0, presence.length),
  counters: async () => ({ ...counters, sockets: held.size }),
  quit: async () => {
    for (const s of held.values()) s.destroy();
    if (observer) observer.disconnect();
    setTimeout(() => process.exit(0), 50);
    return {};
  },
};

serve(COMMANDS);
