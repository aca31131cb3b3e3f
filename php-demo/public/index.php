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
$others = demo_users();
// Presence (session-bridge --presence-room lobby): who is online, rendered by PHP, then kept live.
$displayNames = array_column(demo_users(), 'display', 'id');
try {
    $onlineNow = demo_emitter()->online('lobby');
} catch (Throwable $e) {
    $onlineNow = [];
}
$firstOther = current(array_filter(array_column($others, 'id'), fn ($id) => $id !== $user['id']));

page_start('Notices', $user);
?>
<main class="box">
<h1>Hello, <?= h($user['display']) ?></h1>
<?php flash_list($flash) ?>
<p class="hint">Logged in as <code><?= h($user['name']) ?></code> (user <?= h($user['id']) ?>,
roles: <?= h(implode(', ', $user['roles'])) ?>) since <?= h(date('H:i:s', (int) ($_SESSION['login_time'] ?? time()))) ?>.</p>

<?php live_status($user); ?>

<section id="presence" data-names="<?= h(json_encode((object) $displayNames)) ?>">
<h2>Online now</h2>
<ul id="online">
<?php foreach ($onlineNow as $id): ?>
<li data-user="<?= h((string) $id) ?>"><?= h($displayNames[$id] ?? "user $id") ?></li>
<?php endforeach ?>
</ul>
<p class="hint">Everyone with a page open in the lobby, on any daemon; a reload is not a leave.</p>
</section>

<h2>Send a notice</h2>
<form method="post" action="/notify.php" id="send">
<input type="hidden" name="return" value="/">
<label for="to">to</label>
<select name="to" id="to">
<?php foreach ($others as $other): ?>
<option value="<?= h($other['id']) ?>"<?= $other['id'] === $firstOther ? ' selected' : '' ?>><?= h($other['display']) ?> (user <?= h($other['id']) ?>)</option>
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
<?php live_scripts($user); ?>
<?php
page_end();
