/*
 * The live part of every demo page: one Socket.IO connection to session-bridge,
 * the notices and other events it brings, and the end of the session.
 *
 * The page renders window.DEMO (see live_scripts() in src/views.php), with the
 * history position PHP read while making the page. Connecting with
 * auth.since = that position makes the daemon send every event published
 * since then (also while the browser was between two pages), then live ones.
 */
(function () {
  'use strict';
  const DEMO = window.DEMO;
  const $ = (id) => document.getElementById(id);
  const status = (text, kind) => { $('status').textContent = text; $('status').className = kind || ''; };
  const now = () => new Date().toLocaleTimeString();
  function item(list, parts) {
    if (!$(list)) { return; }
    const li = document.createElement('li');
    parts.forEach(([tag, text]) => {
      const el = tag ? document.createElement(tag) : document.createTextNode('');
      el.textContent = text;
      li.appendChild(el);
    });
    $(list).prepend(li);
  }
  function post(form, resultId) {
    if (!form) { return; }
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const body = new FormData(form);
      body.delete('return');
      fetch(form.action, { method: 'POST', body, headers: { Accept: 'application/json' }, credentials: 'same-origin' })
        .then((r) => r.json().then((j) => {
          $(resultId).textContent = j.ok ? 'sent' : 'failed: ' + j.error;
          if (j.ok && form.message) { form.message.value = ''; }
        }))
        .catch((e) => { $(resultId).textContent = 'failed: ' + e.message; });
    });
  }
  post($('send'), 'send-result');
  post($('publish'), 'publish-result');

  if (typeof io !== 'function') { return; }
  let ended = false;
  // The one line a page needs: connect with the position it was rendered at.
  const options = { withCredentials: true, auth: { since: DEMO.position } };
  // ":6001" means "this page's host, on port 6001", so both 127.0.0.1 and
  // localhost work (the session cookie belongs to the host the page came from).
  const url = /^:\d+$/.test(DEMO.socketUrl)
    ? location.protocol + '//' + location.hostname + DEMO.socketUrl : DEMO.socketUrl;
  const socket = url ? io(url, options) : io(options);

  socket.on('connect', () => {
    document.querySelectorAll('.flash.success').forEach((el) => { el.hidden = true; });
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
  socket.on('resync', () => {
    item('events', [['strong', 'resync'], [null, ' some events are too old to replay: reload the page'], ['time', now()]]);
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
    if ($('no-notices')) { $('no-notices').hidden = true; }
    item('notices', [['strong', n && n.from], [null, ': ' + (n && n.text)], ['time', now()]]);
  });
  // The "Online now" list (index.php): a presence query after each connect,
  // then joined/left events.
  const online = $('online');
  if (online) {
    const names = JSON.parse($('presence').dataset.names || '{}');
    const ids = new Set(Array.from(online.children, (li) => li.dataset.user));
    const render = () => online.replaceChildren(...Array.from(ids).sort().map((id) => {
      const li = document.createElement('li');
      li.dataset.user = id;
      li.textContent = names[id] || 'user ' + id;
      return li;
    }));
    socket.on('connect', () => {
      socket.timeout(5000).emit('presence', 'lobby', (err, answer) => {
        if (err || !answer || !Array.isArray(answer.users)) { return; }
        ids.clear();
        answer.users.forEach((id) => ids.add(String(id)));
        render();
      });
    });
    socket.on('presence', (event) => {
      if (!event || event.room !== 'lobby') { return; }
      if ('joined' in event) { ids.add(String(event.joined)); }
      if ('left' in event) { ids.delete(String(event.left)); }
      render();
    });
  }
  socket.onAny((event, ...args) => {
    if (['notice', 'session_ended', 'resync'].includes(event)) { return; }
    if (args.length > 1 && typeof args[args.length - 1] === 'string') { args.pop(); } // its position
    item('events', [['strong', event], [null, ' ' + JSON.stringify(args.length > 1 ? args : args[0])], ['time', now()]]);
  });
}());
