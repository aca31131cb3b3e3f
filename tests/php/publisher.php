<?php
/*
 * Publishes a numbered stream of events through the real Emitter and Predis,
 * the way a PHP app would while users click around:
 *
 *   php publisher.php REDIS_URI USER COUNT RATE [CHANNEL]
 *
 * sends event "notice" {"from": "publisher", "text": "tick n", "seq": n} to USER
 * for n = 0..COUNT-1 (COUNT 0: until
 * SIGTERM) at RATE per second, and prints "n POSITION" for each, or "n error"
 * when Redis refused it (e.g. while it restarts: it goes on with the next).
 */

declare(strict_types=1);

[$uri, $user, $count, $rate] = array_slice($argv, 1, 4) + [null, null, null, null];
$channel = $argv[5] ?? 'session-bridge';
require __DIR__ . '/../../php-demo/src/autoload.php';

$stop = false;
pcntl_async_signals(true);
pcntl_signal(SIGTERM, function () use (&$stop) { $stop = true; });

$client = new Predis\Client($uri, ['timeout' => 0.5, 'read_write_timeout' => 0.5]);
$emitter = new SessionBridge\Emitter($client, $channel);
$target = $emitter->toUser(ctype_digit($user) ? (int) $user : $user);
$interval = 1.0 / (float) $rate;
$start = microtime(true);
for ($n = 0; !$stop && ((int) $count === 0 || $n < (int) $count); $n++) {
    try {
        echo $n, ' ', $target->emit('notice', ['from' => 'publisher', 'text' => "tick $n", 'seq' => $n]), "\n";
    } catch (Predis\PredisException $e) {
        echo $n, " error\n";
        $client->disconnect();
    }
    $wait = $start + ($n + 1) * $interval - microtime(true);
    if ($wait > 0) {
        usleep((int) ($wait * 1e6));
    }
}
