<?php
/*
 * POST /notify.php  to (user id), message
 * Sends event "notice" {"from", "text", "at"} to every socket of user `to`.
 * JSON {"ok": true, "position": P} (P = the event's position in the history);
 * with a "return" field (HTML form) a 303 back instead.
 */

declare(strict_types=1);

require __DIR__ . '/../src/bootstrap.php';

demo_require_session_post(401, 'not logged in');
demo_session_start(form_return_path() === null);   // JSON callers: read only
$sender = demo_current_user();
if ($sender === null) {
    json_response(401, ['ok' => false, 'error' => 'not logged in']);
}

$to = $_POST['to'] ?? '';
$message = $_POST['message'] ?? '';
if (!is_string($to) || !preg_match('/^-?[0-9]{1,18}$/', $to)) {
    respond(400, ['ok' => false, 'error' => 'field "to" must be a user id'], 'Choose who gets the notice.');
}
if (!is_string($message) || trim($message) === '') {
    respond(400, ['ok' => false, 'error' => 'field "message" must not be empty'], 'Write a message first.');
}

$position = demo_emitter()->toUser((int) $to)->emit('notice', [
    'from' => $sender['name'],
    'text' => $message,
    'at' => time(),
]);

$recipient = demo_user_by_id((int) $to);
respond(200, ['ok' => true, 'position' => $position],
    'Notice sent to ' . ($recipient['display'] ?? "user $to") . '.');
