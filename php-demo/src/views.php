<?php
/*
 * The HTML around every page, and the login form. Everything printed goes
 * through h().
 */

declare(strict_types=1);

/** @param array<string, mixed>|null $user the logged-in user: the page gets the site's menu */
function page_start(string $title, ?array $user = null): void
{
    header('Content-Type: text/html; charset=utf-8');
    header('X-Content-Type-Options: nosniff');
    header('Referrer-Policy: same-origin');
    ?>
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title><?= h($title) ?> - Acme Intranet</title>
<link rel="stylesheet" href="/style.css">
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
</head>
<body>
<div id="top"><a href="/">Acme Intranet</a> <span>real-time notices by session-bridge</span>
<?php if ($user !== null): ?>
<nav><a href="/" id="nav-notices">Notices</a> <a href="/account.php" id="nav-account">Your account</a></nav>
<?php endif ?>
</div>
<?php
}

/**
 * The live connection's status line and the user's notices (every logged-in
 * page has them): the newest notices as of this page's position, rendered
 * here; live.js adds the ones that come after.
 *
 * @param array<string, mixed> $user
 */
function live_status(array $user): void
{
    $ready = is_file(dirname(__DIR__) . '/public/vendor/socket.io.min.js');
    $notices = demo_recent_notices($user['id']);
    ?>
<h2>Live connection</h2>
<p id="status"><?= $ready ? 'connecting&hellip;' : 'The Socket.IO client is missing: run php-demo/setup.sh' ?></p>
<p id="ended" hidden></p>
<h2>Notices for you</h2>
<ul id="notices">
<?php foreach ($notices as ['position' => $position, 'notice' => $notice]): ?>
<li data-position="<?= h($position) ?>"<?= isset($notice['seq']) ? ' data-seq="' . h($notice['seq']) . '"' : '' ?>><strong><?= h($notice['from'] ?? '') ?></strong>: <?= h($notice['text'] ?? '') ?><time><?= h(date('H:i:s', intdiv((int) $position, 1000))) ?></time></li>
<?php endforeach ?>
</ul>
<p class="hint" id="no-notices"<?= $notices ? ' hidden' : '' ?>>Nothing yet. Send yourself one, or log in as someone else in another browser.</p>
<?php
}

/**
 * The page's Socket.IO client and live.js, with what they need to know:
 * where the daemon is, who should be connected, and the history position
 * now, so that events published after this page was made reach it.
 *
 * @param array<string, mixed> $user
 */
function live_scripts(array $user): void
{
    $config = [
        'socketUrl' => demo_config()['socket_url'],
        'position' => demo_position(),
        'userId' => $user['id'],
        'userName' => $user['name'],
    ];
    $flags = JSON_HEX_TAG | JSON_HEX_AMP | JSON_HEX_APOS | JSON_HEX_QUOT | JSON_UNESCAPED_SLASHES | JSON_THROW_ON_ERROR;
    if (is_file(dirname(__DIR__) . '/public/vendor/socket.io.min.js')) {
        echo '<script src="/vendor/socket.io.min.js"></script>', "\n";
    }
    echo '<script>window.DEMO = ', json_encode($config, $flags), ";</script>\n";
    echo '<script src="/live.js"></script>', "\n";
}

function page_end(): void
{
    ?>
<div id="foot">session-bridge PHP demo &middot; sessions in Redis via <?= h(demo_config()['handler']) ?>
 (<?= h(ini_get('session.serialize_handler')) ?>)</div>
</body>
</html>
<?php
}

/** @param list<array{type:string, text:string}> $flash */
function flash_list(array $flash): void
{
    foreach ($flash as $message) {
        $type = ($message['type'] ?? '') === 'error' ? 'error' : 'success';
        echo '<p class="flash ', $type, '">', h($message['text'] ?? ''), "</p>\n";
    }
}

/** @param list<array{type:string, text:string}> $flash */
function login_form(?string $error = null, string $username = '', array $flash = []): void
{
    ?>
<main class="box narrow">
<h1>Please log in</h1>
<?php flash_list($flash) ?>
<?php if ($error !== null): ?>
<p class="flash error" id="login-error"><?= h($error) ?></p>
<?php endif ?>
<form method="post" action="/login.php" id="login">
<table class="form">
<tr><th><label for="username">User name</label></th>
    <td><input type="text" id="username" name="username" value="<?= h($username) ?>" autocomplete="username" required autofocus></td></tr>
<tr><th><label for="password">Password</label></th>
    <td><input type="password" id="password" name="password" autocomplete="current-password" required></td></tr>
<tr><th></th><td><button type="submit">Log in</button></td></tr>
</table>
</form>
<p class="hint">Demo accounts (password = user name):
<?php foreach (demo_users() as $user): ?>
<code><?= h($user['name']) ?></code>
<?php endforeach ?>
</p>
</main>
<?php
}
