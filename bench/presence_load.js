#!/usr/bin/env node
// Load generator of bench/presence.py: socket.io-client sockets of the
// sessions written by presence_seed.php (session i: md5("presence-bench:i")).
// One JSON command per stdin line, one JSON answer per stdout line.
//
//   {"cmd": "hold", "url", "from", "to", "concurrency"}   open sockets [from, to)
//   {"cmd": "churn", "url", "rate", "seconds", "pool": [from, to], "delay", "backlog"}
//       open `backlog` sockets of the pool, then every 1/rate s, alternately open a socket of the next session of the
//       pool (a join) or close the oldest one opened by the churn (a leave,
//       announced `delay` s later); the observer (socket 0, held) times each
//       presence event it receives against the moment the join or leave
//       happened here (one clock).

'use strict';

const crypto = require('crypto');
const { io } = require('socket.io-client');
const { serve } = require('./commands');

const now = () => Number(process.hrtime.bigint()) / 1e6; // ms
const sid = (i) => crypto.createHash('md5').update(`presence-bench:${i}`).digest('hex');
const held = new Map(); // index -> socket
const presence = []; // [receivedAt, payload] seen by socket 0

function open(url, i) {
  return new Promise((resolve) => {
    const socket = io(url, { transports: ['websocket'], forceNew: true, reconnection: false,
      timeout: 30000, extraHeaders: { Cookie: `PHPSESSID=${sid(i)}` } });
    socket.once('connect', () => { held.set(i, socket); resolve(true); });
    socket.once('connect_error', (err) => { socket.close(); resolve(err.message); });
    if (i === 0) socket.on('presence', (p) => presence.push([now(), p]));
  });
}

async function hold(cmd) {
  const started = now();
  let next = cmd.from;
  const failures = {};
  async function worker() {
    while (next < cmd.to) {
      const i = next;
      next += 1;
      const ok = await open(cmd.url, i);
      if (ok !== true) failures[ok] = (failures[ok] || 0) + 1;
    }
  }
  await Promise.all(Array.from({ length: cmd.concurrency || 50 }, worker));
  return { held: held.size, seconds: (now() - started) / 1000, failures };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function churn(cmd) {
  const [from, to] = cmd.pool;
  const joinedAt = new Map(); // user id -> ms of the connect
  const leftAt = new Map(); // user id -> ms of the close
  const mine = [];
  let next = from;
  const period = 1000 / cmd.rate;
  const pending = [];
  function join() {
    const i = next;
    next = next + 1 < to ? next + 1 : from;
    const opened = open(cmd.url, i).then((ok) => {
      if (ok === true) { joinedAt.set(100000 + i, now()); mine.push(i); }
    });
    pending.push(opened);
    return opened;
  }
  // A backlog first, so that each churning socket lives backlog / (rate / 2) seconds.
  for (let k = 0; k < cmd.backlog; k += 1) await join();
  await sleep(500);
  const started = now();
  for (let k = 0; now() - started < cmd.seconds * 1000; k += 1) {
    const due = started + k * period;
    if (due > now()) await sleep(due - now());
    if (k % 2 === 0 || mine.length === 0) {
      join();
    } else {
      const i = mine.shift();
      held.get(i).disconnect();
      held.delete(i);
      leftAt.set(100000 + i, now());
    }
  }
  await Promise.all(pending);
  await sleep((cmd.delay + 2) * 1000);
  const joins = [];
  const leaves = [];
  for (const [at, p] of presence) {
    if (p.joined !== undefined && joinedAt.has(p.joined)) joins.push(at - joinedAt.get(p.joined));
    if (p.left !== undefined && leftAt.has(p.left)) leaves.push(at - leftAt.get(p.left) - cmd.delay * 1000);
  }
  const seen = new Set(presence.map(([, p]) => p.joined));
  const result = { joins, leaves, expected_joins: joinedAt.size, expected_leaves: leftAt.size,
    still_open: mine.length, unseen_joins: [...joinedAt.keys()].filter((u) => !seen.has(u)),
    first_event: presence.length ? presence[0][1] : null };
  for (const i of mine) { held.get(i).disconnect(); held.delete(i); }
  presence.length = 0;
  return result;
}

const COMMANDS = {
  hold,
  churn,
  quit: async () => { for (const s of held.values()) s.disconnect(); setTimeout(() => process.exit(0), 50); return {}; },
};

serve(COMMANDS);
