<?php
/*
 * POST /forget.php
 * Logs the user out WITHOUT destroying the session: user_id and user are
 * removed, the session (csrf token, flash...) stays in Redis.
 * JSON {"ok": true, "session_id": "..."}; 400 without a session cookie.
 */

declare(strict_types=1);

require __DIR__ . '/../src/bootstrap.php';

demo_require_session_post(400, 'no session cookie');

demo_session_start();
unset($_SESSION['user_id'], $_SESSION['user']);

respond(200, ['ok' => true, 'session_id' => session_id()],
    'You are logged out, but your session still exists.');
