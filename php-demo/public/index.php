<?php
/*
 * GET /  - the login form, or, once logged in, the live page: a Socket.IO
 * connection to session-bridge, incoming notices, a form to send one, and
 * buttons that end the session in each of the ways the daemon notices.
 */

declare(strict_types=1);

require __DIR__ . '/../src/bootstrap.php';

require_method('GET', 'HEAD');

$user = null;
if (demo_has_session_cookie()) {
    demo_session_start();
    $user = demo_current_user();
}
$flash = session_status() === PHP_SESSION_ACTIVE ? flash_take() : [];

if ($user === null) {
    page_start('Log in');
    login_form(null, '', $flash);
    page_end();
    exit;
}

$config = demo_config();
$clientReady = is_file(__DIR__ . '/vendor/socket.io.min.js');
$jsConfig = [
    'socketUrl' => $config['socket_url'],
    'userId' => $user['id'],
    'userName' => $user['name'],
];
$jsonForScript = JSON_HEX_TAG | JSON_HEX_AMP | JSON_HEX_APOS | JSON_HEX_QUOT | JSON_UNESCAPED_SLASHES | JSON_THROW_ON_ERROR;
$others = demo_users();
// Presence (session-bridge --presence-room lobby): who is online, rendered by PHP, then kept live.
$displayNames = array_column(demo_users(), 'display', 'id');
try {
    $onlineNow = demo_emitter()->online('lobby');
} catch (Throwable $e) {
    $onlineNow = [];
}

page_start('Notices');
?>
<main class="box">
<h1>Hello, <?= h($user['display']) ?></h1>
<?php flash_list($flash) ?>
<p class="hint">Logged in as <code><?= h($user['name']) ?></code> (user <?= h($user['id']) ?>,
roles: <?= h(implode(', ', $user['roles'])) ?>) since <?= h(date('H:i:s', (int) ($_SESSION['login_time'] ?? time()))) ?>.</p>

<h2>Live connection</h2>
<p id="status"><?= $clientReady ? 'connecting&hellip;' : 'The Socket.IO client is missing: run php-demo/setup.sh' ?></p>
<p id="ended" hidden></p>

<section id="presence">
<h2>Online now</h2>
<ul id="online">
<?php foreach ($onlineNow as $id): ?>
<li data-user="<?= h((string) $id) ?>"><?= h($displayNames[$id] ?? "user $id") ?></li>
<?php endforeach ?>
</ul>
<p class="hint">Everyone with a page open in the lobby, on any daemon; a reload is not a leave.</p>
</section>

<h2>Notices for you</h2>
<ul id="notices"></ul>
<p class="hint" id="no-notices">Nothing yet. Send yourself one below, or log in as someone else in another browser.</p>

<h2>Send a notice</h2>
<form method="post" action="/notify.php" id="send">
<input type="hidden" name="return" value="/">
<label for="to">to</label>
<select name="to" id="to">
<?php foreach ($others as $other): ?>
<option value="<?= h($other['id']) ?>"><?= h($other['display']) ?> (user <?= h($other['id']) ?>)</option>
<?php endforeach ?>
</select>
<input type="text" name="message" id="message" size="40" maxlength="500" placeholder="Your message" required>
<button type="submit">Send</button>
<span id="send-result" class="hint"></span>
</form>

<h2>Publish any event</h2>
<form method="post" action="/broadcast.php" id="publish">
<input type="hidden" name="return" value="/">
<table class="form">
<tr><th><label for="event">event</label></th><td><input type="text" name="event" id="event" value="notice" required></td></tr>
<tr><th><label for="room">room</label></th><td><input type="text" name="room" id="room" placeholder="empty = every socket"></td></tr>
<tr><th><label for="data">data (JSON)</label></th>
    <td><textarea name="data" id="data" rows="2"><?= h(json_encode(['from' => $user['name'], 'text' => 'Hello everyone'])) ?></textarea></td></tr>
<tr><th></th><td><button type="submit">Publish</button> <span id="publish-result" class="hint"></span></td></tr>
</table>
</form>
<p class="hint">Other events arrive here:</p>
<ul id="events"></ul>

<h2>End the session</h2>
<div class="tools">
<form method="post" action="/logout.php"><button type="submit">Log out</button></form>
<form method="post" action="/forget.php"><input type="hidden" name="return" value="/"><button type="submit">Forget me, keep the session</button></form>
<form method="post" action="/regenerate.php"><input type="hidden" name="return" value="/"><button type="submit">New session id</button></form>
<form method="post" action="/become.php"><input type="hidden" name="return" value="/">
<select name="username" aria-label="user to become">
<?php foreach ($others as $other): ?>
<option value="<?= h($other['name']) ?>"<?= $other['id'] === $user['id'] ? ' disabled' : '' ?>><?= h($other['display']) ?></option>
<?php endforeach ?>
</select> <button type="submit">Become</button></form>
</div>
<p class="hint">Each one changes the session in Redis; session-bridge then sends <code>session_ended</code> to this page
(destroyed, logged_out, destroyed, logged_out) and closes the socket.</p>

<h2>Behind the scenes</h2>
<dl class="facts">
<dt>session handler</dt><dd><?= h($config['handler']) ?></dd>
<dt>serialize handler</dt><dd><?= h(ini_get('session.serialize_handler')) ?></dd>
<dt>Redis key</dt><dd><?= h(demo_session_key(substr(session_id(), 0, 6)) . '…') ?> (shortened: a session id is a password)</dd>
<dt>Redis</dt><dd><?= h($config['redis']) ?></dd>
<dt>event channel</dt><dd><?= h($config['channel']) ?></dd>
<dt>Socket.IO URL</dt><dd><?= h($config['socket_url'] !== '' ? $config['socket_url'] : 'same origin (/socket.io/)') ?></dd>
</dl>
</main>
<?php if ($clientReady): ?>
<script src="/vendor/socket.io.min.js"></script>
<?php endif ?>
<script>
const DEMO = <?= json_encode($jsConfig, $jsonForScript) ?>;
(function () {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const status = (text, kind) => { $('status').textContent = text; $('status').className = kind || ''; };
  const now = () => new Date().toLocaleTimeString();
  function item(list, parts) {
    const li = document.createElement('li');
    parts.forEach(([tag, text]) => {
      const el = tag ? document.createElement(tag) : document.createTextNode('');
      el.textContent = text;
      li.appendChild(el);
    });
    $(list).prepend(li);
  }
  function post(form, resultId) {
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const body = new FormData(form);
      body.delete('return');
      fetch(form.action, { method: 'POST', body, headers: { Accept: 'application/json' }, credentials: 'same-origin' })
        .then((r) => r.json().then((j) => {
          $(resultId).textContent = j.ok ? 'sent (' + j.daemons + ' daemon(s) listening)' : 'failed: ' + j.error;
          if (j.ok && form.message) { form.message.value = ''; }
        }))
        .catch((e) => { $(resultId).textContent = 'failed: ' + e.message; });
    });
  }
  post($('send'), 'send-result');
  post($('publish'), 'publish-result');

  if (typeof io !== 'function') { return; }
  let ended = false;
  const options = { withCredentials: true };
  // ":6001" means "this page's host, on port 6001", so both 127.0.0.1 and
  // localhost work (the session cookie belongs to the host the page came from).
  const url = /^:\d+$/.test(DEMO.socketUrl)
    ? location.protocol + '//' + location.hostname + DEMO.socketUrl : DEMO.socketUrl;
  const socket = url ? io(url, options) : io(options);
  window.demoSocket = socket;

  socket.on('connect', () => {
    status('connected, checking who I am\u2026', 'ok');
    socket.timeout(5000).emit('whoami', (err, answer) => {
      if (err) { status('connected, but whoami did not answer', 'error'); return; }
      const same = answer && String(answer.user) === String(DEMO.userId);
      status(same ? 'connected as ' + DEMO.userName : 'connected as user ' + (answer && answer.user), same ? 'ok' : 'error');
      $('status').title = JSON.stringify(answer);
    });
  });
  socket.on('connect_error', (err) => {
    status('not connected: ' + err.message + (socket.active ? ' (retrying)' : ''), 'error');
  });
  socket.on('disconnect', (reason) => {
    status(ended ? 'disconnected' : 'disconnected (' + reason + ')' + (socket.active ? ', reconnecting\u2026' : ''), 'error');
  });
  socket.on('session_ended', (payload) => {
    ended = true;
    $('ended').textContent = 'your session ended (' + (payload && payload.reason) + ') ';
    const again = document.createElement('a');
    again.href = '/';
    again.textContent = 'log in again';
    $('ended').appendChild(again);
    $('ended').hidden = false;
    document.querySelectorAll('main form button, main form input, main form select, main form textarea')
      .forEach((control) => { control.disabled = true; });
  });
  socket.on('notice', (n) => {
    $('no-notices').hidden = true;
    item('notices', [['strong', n && n.from], [null, ': ' + (n && n.text)], ['time', now()]]);
  });
  socket.onAny((event, ...args) => {
    if (event === 'notice' || event === 'session_ended') { return; }
    item('events', [['strong', event], [null, ' ' + JSON.stringify(args.length > 1 ? args : args[0])], ['time', now()]]);
  });
}());
</script>
<script>
(function () {
  'use strict';
  // The "Online now" list: a presence query after each connect, then joined/left events.
  const socket = window.demoSocket;
  const names = <?= json_encode((object) $displayNames, $jsonForScript) ?>;
  const list = document.getElementById('online');
  if (!socket) { return; }
  const online = new Set(Array.from(list.children, (li) => li.dataset.user));
  function render() {
    list.replaceChildren(...Array.from(online).sort().map((id) => {
      const li = document.createElement('li');
      li.dataset.user = id;
      li.textContent = names[id] || 'user ' + id;
      return li;
    }));
  }
  socket.on('connect', () => {
    socket.timeout(5000).emit('presence', 'lobby', (err, answer) => {
      if (err || !answer || !Array.isArray(answer.users)) { return; }
      online.clear();
      answer.users.forEach((id) => online.add(String(id)));
      render();
    });
  });
  socket.on('presence', (event) => {
    if (!event || event.room !== 'lobby') { return; }
    if ('joined' in event) { online.add(String(event.joined)); }
    if ('left' in event) { online.delete(String(event.left)); }
    render();
  });
}());
</script>
<?php
page_end();
