#!/usr/bin/env node
// The benchmark's reference peer: the job session-bridge does, written the
// plain way a PHP team would write it in Node (socket.io 4 + ioredis +
// php-serialize). Not a product: no config file, no metrics, no graceful drain.
//
//   node server.js --port P --redis-url redis://127.0.0.1:6379/0
//                  [--admin-port A] [--rooms-key rooms] [--user-key user_id]
//                  [--session-prefix ''] [--session-cookie PHPSESSID]
//                  [--channel session-bridge] [--max-sockets-per-user 50]
//
// cookie -> GET <prefix><id> -> decode PHP's session format -> room user:<id>;
// refusals reach the client as connect_error with the same reason codes as
// session-bridge; events published on the channel are routed to a user, a
// room or everyone; sockets end (session_ended, then disconnect) on the
// keyspace `del` / `expired` event of their session key.

'use strict';

const http = require('http');
const cookie = require('cookie');
const Redis = require('ioredis');
const { Server } = require('socket.io');
const { unserialize } = require('php-serialize');

function options(argv) {
  const opts = {
    port: 6001, 'redis-url': 'redis://127.0.0.1:6379/0', 'admin-port': 0, 'rooms-key': '',
    'user-key': 'user_id', 'session-prefix': '', 'session-cookie': 'PHPSESSID',
    channel: 'session-bridge', 'max-sockets-per-user': 50,
  };
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, '');
    if (!(name in opts) || argv[i + 1] === undefined) {
      console.error(`unknown or incomplete option ${argv[i]}`);
      process.exit(2);
    }
    opts[name] = typeof opts[name] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
  }
  return opts;
}

// PHP's default session.serialize_handler (`php`): name|<serialized value>...
// php-serialize reads one value; we find where each value ends ourselves.
function valueEnd(buf, at) {
  const type = String.fromCharCode(buf[at]);
  if (type === 'N') return at + 2;
  if ('bidrR'.includes(type)) return buf.indexOf(0x3b, at) + 1; // up to ';'
  const colon = buf.indexOf(0x3a, at + 2);
  const length = Number(buf.toString('latin1', at + 2, colon));
  if (type === 's' || type === 'E') return colon + 1 + length + 2 + 1; // :"...";
  if (type === 'a') return pairsEnd(buf, colon + 2, length);
  const afterName = colon + 1 + length + 2; // O:len:"Name":
  const next = buf.indexOf(0x3a, afterName + 1);
  const n = Number(buf.toString('latin1', afterName + 1, next));
  if (type === 'O') return pairsEnd(buf, next + 2, n);
  if (type === 'C') return next + 2 + n + 1; // C:len:"Name":len:{payload}
  throw new Error(`unknown type ${type}`);
}

function pairsEnd(buf, at, pairs) {
  for (let i = 0; i < 2 * pairs; i += 1) at = valueEnd(buf, at);
  if (buf[at] !== 0x7d) throw new Error('expected }');
  return at + 1;
}

function decodeSession(buf) {
  const session = {};
  let at = 0;
  while (at < buf.length) {
    const bar = buf.indexOf(0x7c, at);
    if (bar < 0) throw new Error('expected |');
    const end = valueEnd(buf, bar + 1);
    if (!(end > bar + 1) || end > buf.length) throw new Error('truncated value');
    session[buf.toString('utf8', at, bar)] = unserialize(buf.subarray(bar + 1, end), {},
      { strict: false });
    at = end;
  }
  return session;
}

function lookup(value, path) {
  for (const part of path.split('.')) {
    if (value === null || typeof value !== 'object' || !(part in value)) return undefined;
    value = value[part];
  }
  return value;
}

function main() {
  const opts = options(process.argv.slice(2));
  const db = Number(new URL(opts['redis-url']).pathname.slice(1) || 0);
  const redis = new Redis(opts['redis-url'], { commandTimeout: 1000 });
  const sub = new Redis(opts['redis-url']);
  const httpServer = http.createServer();
  const io = new Server(httpServer, { serveClient: false, maxHttpBufferSize: 100000 });
  const bySession = new Map(); // session id -> Set of sockets
  const perUser = new Map(); // user -> socket count

  io.use(async (socket, next) => {
    const header = socket.request.headers.cookie;
    const id = header ? cookie.parse(header)[opts['session-cookie']] : undefined;
    if (id === undefined) return next(new Error('no_session'));
    if (!/^[A-Za-z0-9,-]{1,256}$/.test(id)) return next(new Error('invalid_session_id'));
    let raw;
    try {
      raw = await redis.getBuffer(opts['session-prefix'] + id);
    } catch (err) {
      return next(new Error('store_unavailable'));
    }
    if (raw === null) return next(new Error('session_not_found'));
    let session;
    try {
      session = decodeSession(raw);
    } catch (err) {
      return next(new Error('session_unreadable'));
    }
    const user = lookup(session, opts['user-key']);
    if (user === undefined || user === null || user === false || user === '') {
      return next(new Error('not_authenticated'));
    }
    const userName = String(user);
    if ((perUser.get(userName) || 0) >= opts['max-sockets-per-user']) {
      return next(new Error('too_many_sockets'));
    }
    const granted = opts['rooms-key'] ? lookup(session, opts['rooms-key']) : undefined;
    const rooms = granted && typeof granted === 'object' ? Object.values(granted).map(String) : [];
    socket.data = { session: id, user: userName, userJson: user, rooms };
    return next();
  });

  io.on('connection', (socket) => {
    const { session, user, userJson, rooms } = socket.data;
    socket.join(`user:${user}`);
    for (const room of rooms) if (room && !room.startsWith('user:')) socket.join(room);
    perUser.set(user, (perUser.get(user) || 0) + 1);
    if (!bySession.has(session)) bySession.set(session, new Set());
    bySession.get(session).add(socket);
    socket.on('whoami', (ack) => typeof ack === 'function' && ack({ user: userJson, session: {} }));
    socket.on('disconnect', () => {
      const left = perUser.get(user) - 1;
      if (left > 0) perUser.set(user, left); else perUser.delete(user);
      const sockets = bySession.get(session);
      sockets.delete(socket);
      if (sockets.size === 0) bySession.delete(session);
    });
  });

  function endSession(key, reason) {
    if (!key.startsWith(opts['session-prefix'])) return;
    const sockets = bySession.get(key.slice(opts['session-prefix'].length));
    if (!sockets) return;
    for (const socket of [...sockets]) {
      socket.emit('session_ended', { reason });
      socket.disconnect(true);
    }
  }

  function route(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch (err) {
      return;
    }
    if (message === null || typeof message !== 'object' || message.canary) return;
    if (message.disconnect) {
      const room = io.sockets.adapter.rooms.get(`user:${message.disconnect.user}`);
      for (const id of room ? [...room] : []) {
        const socket = io.sockets.sockets.get(id);
        socket.emit('session_ended', { reason: 'revoked' });
        socket.disconnect(true);
      }
      return;
    }
    if (typeof message.event !== 'string' || !message.event) return;
    if (message.user !== undefined) io.to(`user:${message.user}`).emit(message.event, message.data);
    else if (message.room !== undefined) io.to(message.room).emit(message.event, message.data);
    else io.emit(message.event, message.data);
  }

  const keyDeleted = `__keyevent@${db}__:del`;
  const keyExpired = `__keyevent@${db}__:expired`;
  let ready = false;
  sub.on('message', (channel, message) => {
    if (channel === opts.channel) route(message);
    else if (channel === keyDeleted) endSession(message, 'destroyed');
    else if (channel === keyExpired) endSession(message, 'expired');
  });

  (async () => {
    const [, flags] = await redis.config('GET', 'notify-keyspace-events');
    const missing = [...'Egx'].filter((flag) => !flags.includes(flag) && !flags.includes('A'));
    if (missing.length) await redis.config('SET', 'notify-keyspace-events', flags + missing.join(''));
    await sub.subscribe(opts.channel, keyDeleted, keyExpired);
    httpServer.listen(opts.port, '127.0.0.1', () => { ready = true; });
  })().catch((err) => {
    console.error(err);
    process.exit(1);
  });

  if (opts['admin-port']) {
    http.createServer((req, res) => {
      const ok = ready && redis.status === 'ready' && sub.status === 'ready';
      res.writeHead(req.url === '/readyz' && !ok ? 503 : 200);
      res.end(ok ? 'ready\n' : 'starting\n');
    }).listen(opts['admin-port'], '127.0.0.1');
  }
  for (const signal of ['SIGTERM', 'SIGINT']) {
    process.on(signal, () => {
      io.close();
      process.exit(0);
    });
  }
}

main();
