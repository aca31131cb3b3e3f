<?php
/*
 * Publishes numbered events through the real Emitter on a Predis Sentinel
 * client, retrying each one until it is acknowledged, as a careful PHP app
 * would across a failover:
 *
 *   php failover_publisher.php SENTINELS SERVICE USERS RATE
 *
 * SENTINELS: comma list of tcp:// URIs; USERS: comma list of user ids. Event
 * n is "tick" {"seq": n} to USERS[n % count], with idempotency key "tick-n",
 * at RATE per second. Prints "# replicas N" (how many each event waits for),
 * then "n ok POSITION ATTEMPTS" once n is acknowledged,
 * "n failed WHY" for each failed attempt (then retries n, the same key), and
 * stops at SIGTERM once the event in hand is acknowledged (or after 30 s of
 * failing: "n gave-up").
 */

declare(strict_types=1);

[$sentinels, $service, $users, $rate] = array_slice($argv, 1, 4) + [null, null, null, null];
require __DIR__ . '/../../php-demo/src/autoload.php';

$stop = false;
pcntl_async_signals(true);
pcntl_signal(SIGTERM, function () use (&$stop) { $stop = true; });

$client = new Predis\Client(explode(',', $sentinels), [
    'replication' => 'sentinel', 'service' => $service,
    'parameters' => ['timeout' => 0.5, 'read_write_timeout' => 3],
]);
$client->getConnection()->setRetryLimit(0);  // every failure surfaces here, to be retried below
$emitter = new SessionBridge\Emitter($client);
echo '# replicas ', $emitter->replicas(), "\n";  // 1: a Sentinel client waits for a replica
$users = array_map(fn ($id) => ctype_digit($id) ? (int) $id : $id, explode(',', $users));
$interval = 1.0 / (float) $rate;
$next = microtime(true);
for ($n = 0; !$stop; $n++) {
    $user = $users[$n % count($users)];
    $since = microtime(true);
    for ($attempt = 1; ; $attempt++) {
        try {
            $position = $emitter->toUser($user)->emit('tick', ['seq' => $n], "tick-$n");
            echo "$n ok $position $attempt\n";
            break;
        } catch (SessionBridge\NotReplicated | Predis\PredisException $e) {
            echo "$n failed ", get_class($e), ': ', strtr($e->getMessage(), "\n", ' '), "\n";
            if (microtime(true) - $since > 30) {
                echo "$n gave-up\n";
                exit(1);
            }
            usleep(50000);
        }
    }
    $next += $interval;
    $wait = $next - microtime(true);
    if ($wait > 0) {
        usleep((int) ($wait * 1e6));
    } else {
        $next = microtime(true);
    }
}
