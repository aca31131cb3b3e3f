<?php
/*
 * Times COUNT emits through the Emitter on a Predis Sentinel client, waiting
 * for REPLICAS replicas each (0: no WAIT). Prints one JSON object:
 * per-emit wall milliseconds (median, p99) and this process's CPU ms per emit.
 *
 *   php emit_wait.php SENTINELS SERVICE REPLICAS COUNT
 */

declare(strict_types=1);

[$sentinels, $service, $replicas, $count] = array_slice($argv, 1, 4);
require __DIR__ . '/../php-demo/src/autoload.php';

$client = new Predis\Client(explode(',', $sentinels), ['replication' => 'sentinel', 'service' => $service]);
$emitter = new SessionBridge\Emitter($client, 'session-bridge', replicas: (int) $replicas);
$emitter->broadcast('warm', null);
$cpu = static function (): float {
    $usage = getrusage();
    return $usage['ru_utime.tv_sec'] * 1e3 + $usage['ru_utime.tv_usec'] / 1e3
        + $usage['ru_stime.tv_sec'] * 1e3 + $usage['ru_stime.tv_usec'] / 1e3;
};
$times = [];
$cpuStart = $cpu();
for ($n = 0; $n < (int) $count; $n++) {
    $start = hrtime(true);
    $emitter->toUser(1)->emit('tick', ['seq' => $n], "bench-$replicas-$n-" . getmypid());
    $times[] = (hrtime(true) - $start) / 1e6;
}
$cpuMs = ($cpu() - $cpuStart) / (int) $count;
sort($times);
echo json_encode([
    'replicas' => (int) $replicas,
    'emits' => (int) $count,
    'median_ms' => round($times[intdiv(count($times), 2)], 3),
    'p99_ms' => round($times[(int) floor(count($times) * 0.99)], 3),
    'php_cpu_ms_per_emit' => round($cpuMs, 4),
]), "\n";
