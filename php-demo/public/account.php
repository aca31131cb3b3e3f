<?php
/*
 * GET /account.php - a second page of the site: who you are, what the session
 * holds. Like every logged-in page it keeps a live connection (live.js), so
 * clicking between pages shows how events reach the next page.
 */

declare(strict_types=1);

require __DIR__ . '/../src/bootstrap.php';

require_method('GET', 'HEAD');

$user = null;
if (demo_has_session_cookie()) {
    demo_session_start(true);
    $user = demo_current_user();
}
if ($user === null) {
    header('Location: /', true, 303);
    exit;
}

page_start('Your account', $user);
?>
<main class="box">
<h1>Your account</h1>
<dl class="facts">
<dt>name</dt><dd><?= h($user['display']) ?> (<code><?= h($user['name']) ?></code>)</dd>
<dt>user id</dt><dd><?= h($user['id']) ?> &mdash; your sockets are in room <code>user:<?= h($user['id']) ?></code></dd>
<dt>roles</dt><dd><?= h(implode(', ', $user['roles'])) ?></dd>
<dt>logged in at</dt><dd><?= h(date('H:i:s', (int) ($_SESSION['login_time'] ?? time()))) ?></dd>
</dl>
<?php live_status($user); ?>
<p class="hint">Other events arrive here:</p>
<ul id="events"></ul>
</main>
<?php live_scripts($user); ?>
<?php
page_end();
