<?php
/*
 * POST /become.php  username
 * Switches the logged-in identity inside the same session (same id), like an
 * admin's "switch user". JSON {"ok": true, "user_id": N, "session_id": "..."}.
 * 401 when not logged in, 400 for an unknown user name.
 */

declare(strict_types=1);

require __DIR__ . '/../src/bootstrap.php';

demo_require_session_post(401, 'not logged in');

demo_session_start();
if (demo_current_user() === null) {
    json_response(401, ['ok' => false, 'error' => 'not logged in']);
}
$name = $_POST['username'] ?? '';
$user = is_string($name) ? demo_user_by_name($name) : null;
if ($user === null) {
    json_response(400, ['ok' => false, 'error' => 'unknown user']);
}

$_SESSION['user_id'] = $user['id'];
$_SESSION['user'] = demo_session_user($user);

respond(200, ['ok' => true, 'user_id' => $user['id'], 'session_id' => session_id()],
    "You are now {$user['display']} (same session id).");
