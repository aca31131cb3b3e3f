<?php
/*
 * POST /regenerate.php
 * session_regenerate_id(true): same data under a new id, the old key deleted.
 * JSON {"ok": true, "session_id": NEW, "old_session_id": OLD}; new cookie set.
 */

declare(strict_types=1);

require __DIR__ . '/../src/bootstrap.php';

demo_require_session_post(400, 'no session cookie');

demo_session_start();
$old = session_id();
session_regenerate_id(true);

respond(200, ['ok' => true, 'session_id' => session_id(), 'old_session_id' => $old],
    'Your session has a new id.');
