<?php
/*
 * GET /whoami.php
 * What PHP sees for the caller's session. Read-only: the session is read and
 * closed, never written, and its TTL is not extended.
 */

declare(strict_types=1);

require __DIR__ . '/../src/bootstrap.php';

require_method('GET');

$id = null;
if (demo_has_session_cookie()) {
    demo_session_start(true);
    $id = session_id();
}
$userId = $_SESSION['user_id'] ?? null;
$user = demo_current_user();

json_response(200, [
    'session_id' => $id,
    'user_id' => $userId,
    'user' => $user['name'] ?? null,
    'serialize_handler' => ini_get('session.serialize_handler'),
    'handler' => demo_config()['handler'],
    'redis_key' => $id === null ? null : demo_session_key($id),
    'session_name' => session_name(),
    'gc_maxlifetime' => (int) ini_get('session.gc_maxlifetime'),
]);
