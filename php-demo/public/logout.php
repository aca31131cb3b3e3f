<?php
/*
 * GET|POST /logout.php
 * Destroys the session (its Redis key is deleted), expires the cookie, 303 to /.
 */

declare(strict_types=1);

require __DIR__ . '/../src/bootstrap.php';

require_method('GET', 'POST');
if ($_SERVER['REQUEST_METHOD'] === 'POST') {
    require_same_origin();
}

if (demo_has_session_cookie()) {
    demo_session_start();
    $_SESSION = [];
    session_destroy();
}
$params = session_get_cookie_params();
setcookie(session_name(), '', [
    'expires' => 1,
    'path' => $params['path'],
    'domain' => $params['domain'],
    'secure' => $params['secure'],
    'httponly' => $params['httponly'],
    'samesite' => $params['samesite'],
]);

redirect('/');
