<?php
// Sessions for bench/presence.py, written as a PHP app on Predis writes them
// (Predis\Session\Handler, `php` serialize handler).
//
// usage: php presence_seed.php HOST PORT COUNT ROOM_TEMPLATE GROUPS [FIRST]
// Sessions FIRST..FIRST+COUNT-1; session i: id md5("presence-bench:i"), user_id 100000+i, rooms
// [ROOM_TEMPLATE with "{k}" replaced by i % GROUPS] (e.g. "chat:{k}", or "lobby").

require '/usr/share/php/Predis/autoload.php';

[$host, $port, $count, $template, $groups] = [$argv[1], (int) $argv[2], (int) $argv[3], $argv[4], (int) $argv[5]];
$first = (int) ($argv[6] ?? 0);
ini_set('session.serialize_handler', 'php');
ini_set('session.gc_maxlifetime', '3600');
ini_set('session.use_cookies', '0');
ini_set('session.cache_limiter', '');
(new Predis\Session\Handler(new Predis\Client(['host' => $host, 'port' => $port])))->register();

for ($i = $first; $i < $first + $count; $i++) {
    session_id(md5("presence-bench:$i"));
    session_start();
    $_SESSION['user_id'] = 100000 + $i;
    $_SESSION['rooms'] = [str_replace('{k}', (string) ($i % $groups), $template)];
    session_write_close();
    $_SESSION = [];
}
echo json_encode(['written' => $count]), "\n";
