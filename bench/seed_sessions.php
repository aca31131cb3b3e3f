<?php
// Writes benchmark sessions into Redis exactly as a PHP app on Predis does:
// Predis\Session\Handler as the save handler, the default serialize handler
// (`php`), session_start() / fill $_SESSION / session_write_close(), so every
// key is the bare 32-hex session id written with SETEX <gc_maxlifetime>.
//
// usage: php seed_sessions.php HOST PORT COUNT [FIRST]
//        php seed_sessions.php cluster:HOST:PORT,HOST:PORT... 0 COUNT [FIRST]
//        (the second: through Predis's cluster client, keys on every shard)
// Session i has id md5("session-bridge-bench:i") and user_id 100000+i; the
// load generator derives the same ids (bench/loadgen.js sessionId()).
// Prints one JSON line: {"written": n, "bytes_min": .., "bytes_max": .., "seconds": ..}

require '/usr/share/php/Predis/autoload.php';

[$host, $port, $count] = [$argv[1], (int) $argv[2], (int) $argv[3]];
$first = (int) ($argv[4] ?? 0);

ini_set('session.serialize_handler', 'php');
ini_set('session.gc_maxlifetime', '3600');
ini_set('session.use_cookies', '0');
ini_set('session.cache_limiter', '');

$client = str_starts_with($host, 'cluster:')
    ? new Predis\Client(array_map(static fn ($seed) => "tcp://$seed", explode(',', substr($host, 8))),
                        ['cluster' => 'redis'])
    : new Predis\Client(['host' => $host, 'port' => $port]);
$handler = new Predis\Session\Handler($client);
$handler->register();

$names = ['Ada Lovelace', 'Grace Hopper', 'Alan Turing', 'Barbara Liskov', 'Edsger Dijkstra',
          'Margaret Hamilton', 'Donald Knuth', 'Frances Allen', 'Niklaus Wirth', 'Radia Perlman'];
$products = [['SKU-1001', 'Mechanical keyboard', 89.90], ['SKU-2044', 'USB-C hub, 7 ports', 34.50],
             ['SKU-3310', 'Noise-cancelling headphones', 199.00], ['SKU-4172', 'Standing desk mat', 45.00],
             ['SKU-5521', 'Monitor arm', 119.99], ['SKU-6003', 'Laptop sleeve 14"', 24.95]];
$now = time();
$started = microtime(true);
$min = PHP_INT_MAX;
$max = 0;

for ($i = $first; $i < $first + $count; $i++) {
    session_id(md5("session-bridge-bench:$i"));
    session_start();
    $name = $names[$i % count($names)];
    $cart = [];
    for ($k = 0; $k < 3 + $i % 3; $k++) {
        [$sku, $title, $price] = $products[($i + $k) % count($products)];
        $cart[] = ['sku' => $sku, 'name' => $title, 'qty' => 1 + ($i + $k) % 3, 'price' => $price,
                   'added_at' => $now - 60 * $k];
    }
    $_SESSION['user_id'] = 100000 + $i;
    $_SESSION['user'] = [
        'id' => 100000 + $i,
        'name' => $name,
        'email' => strtolower(str_replace(' ', '.', $name)) . "+$i@example.com",
        'roles' => $i % 10 === 0 ? ['customer', 'admin'] : ['customer'],
        'locale' => 'en_GB',
        'timezone' => 'Europe/London',
    ];
    $_SESSION['csrf_token'] = bin2hex(random_bytes(32));
    $_SESSION['flash'] = ['success' => ['Your basket was updated.'], 'info' => []];
    $_SESSION['cart'] = ['items' => $cart, 'currency' => 'EUR', 'coupon' => null];
    $_SESSION['rooms'] = ['lobby'];
    $_SESSION['recently_viewed'] = array_map(fn ($k) => 1000 + ($i * 7 + $k * 13) % 5000, range(0, 11));
    $_SESSION['client'] = [
        'ip' => '203.0.113.' . ($i % 250 + 1),
        'user_agent' => 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) '
            . 'Chrome/131.0.0.0 Safari/537.36',
        'login_at' => $now - 3600,
    ];
    $_SESSION['last_seen'] = $now;
    $bytes = strlen(session_encode());
    $min = min($min, $bytes);
    $max = max($max, $bytes);
    session_write_close();
    $_SESSION = [];
}

echo json_encode(['written' => $count, 'bytes_min' => $min, 'bytes_max' => $max,
                  'seconds' => round(microtime(true) - $started, 3)]), "\n";
