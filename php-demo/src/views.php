<?php
/*
 * The HTML around every page, and the login form. Everything printed goes
 * through h().
 */

declare(strict_types=1);

function page_start(string $title): void
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
<div id="top"><a href="/">Acme Intranet</a> <span>real-time notices by session-bridge</span></div>
<?php
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
