<?php
/*
 * POST /regenerate.php
 * session_regenerate_id(true): same data under a new id, the old key deleted.
 * JSON {"ok": true, "session_id": NEW, "old_session_id": OLD}; new cookie set.
 */

declare(strict_types=1);

require __DIR__ . '/../src/bootstrap.php';

require_method('POST');
require_same_origin();
if (!demo_has_session_cookie()) {
    json_response(400, ['ok' => false, 'error' => 'no session cookie']);
}

demo_session_start();
$old = session_id();
session_regenerate_id(true);

respond(200, ['ok' => true, 'session_id' => session_id(), 'old_session_id' => $old],
    'Your session has a new id.');
