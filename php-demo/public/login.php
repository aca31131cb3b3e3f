<?php
/*
 * POST /login.php  username, password
 * 303 to / with a fresh session id on success; 401 and the form again on failure.
 */

declare(strict_types=1);

require __DIR__ . '/../src/bootstrap.php';

if (($_SERVER['REQUEST_METHOD'] ?? 'GET') === 'GET') {
    redirect('/');
}
require_method('POST');
require_same_origin();

$name = $_POST['username'] ?? '';
$password = $_POST['password'] ?? '';
$user = is_string($name) && is_string($password) ? demo_authenticate($name, $password) : null;

if ($user === null) {
    http_response_code(401);
    page_start('Log in');
    login_form('Wrong user name or password.', is_string($name) ? $name : '');
    page_end();
    exit;
}

demo_session_start();
$_SESSION = [];                 // nothing of an earlier visitor survives a login
session_regenerate_id(true);    // new id, old key deleted: no session fixation

$_SESSION['user_id'] = $user['id'];
$_SESSION['user'] = demo_session_user($user);
// Rooms this user may hear (the daemon reads them with --rooms-key rooms).
$_SESSION['rooms'] = in_array('admin', $user['roles'], true) ? ['lobby', 'orders'] : ['lobby'];
$_SESSION['csrf_token'] = bin2hex(random_bytes(16));
$_SESSION['login_time'] = time();
$_SESSION['login_ip'] = $_SERVER['REMOTE_ADDR'] ?? null;
flash_add('success', "Welcome back, {$user['display']}!");

redirect('/');
