<?php
/*
 * POST /broadcast.php  event, data (JSON text, optional), room or user (optional)
 * Publishes any event through the Emitter: to a room, to a user, or to every
 * socket. Allowed for logged-in users, and for anonymous requests from the
 * local machine (tests). JSON {"ok": true, "position": P}.
 */

declare(strict_types=1);

require __DIR__ . '/../src/bootstrap.php';

require_method('POST');
require_same_origin();

$user = null;
if (demo_has_session_cookie()) {
    demo_session_start(form_return_path() === null);
    $user = demo_current_user();
}
if ($user === null && !request_is_local()) {
    json_response(401, ['ok' => false, 'error' => 'not logged in']);
}

$field = static function (string $name): ?string {
    $value = $_POST[$name] ?? null;
    return is_string($value) && $value !== '' ? $value : null;
};
$event = $field('event');
$room = $field('room');
$to = $field('user');
if ($event === null) {
    respond(400, ['ok' => false, 'error' => 'field "event" is required'], 'Name the event.');
}
if ($room !== null && $to !== null) {
    respond(400, ['ok' => false, 'error' => 'give "room" or "user", not both'], 'Give a room or a user, not both.');
}
try {
    $data = json_decode($field('data') ?? 'null', false, 512, JSON_THROW_ON_ERROR);
} catch (JsonException $e) {
    respond(400, ['ok' => false, 'error' => 'field "data" is not valid JSON: ' . $e->getMessage()], 'The data is not valid JSON.');
}

$emitter = demo_emitter();
if ($room !== null) {
    $position = $emitter->to($room)->emit($event, $data);
} elseif ($to !== null) {
    $position = $emitter->toUser(preg_match('/^-?[0-9]{1,18}$/', $to) ? (int) $to : $to)->emit($event, $data);
} else {
    $position = $emitter->broadcast($event, $data);
}

respond(200, ['ok' => true, 'position' => $position], "Event \"$event\" published.");
