<?php
/*
 * Included first by every page: reads the DEMO_* environment, loads Predis
 * and the SessionBridge classes, and points PHP's session module at Redis,
 * either through Predis\Session\Handler or through phpredis's native handler.
 *
 * Nothing here starts the session; pages call demo_session_start().
 */

declare(strict_types=1);

/** A DEMO_* setting is wrong or a needed extension is missing (500). */
final class DemoConfigError extends RuntimeException
{
}

/** The session store did not answer (503). */
final class DemoStoreError extends RuntimeException
{
}

require __DIR__ . '/http.php';
require __DIR__ . '/users.php';
require __DIR__ . '/views.php';

ini_set('display_errors', '0');   // errors go to the server log, never into pages
ini_set('log_errors', '1');

set_exception_handler('demo_fail');

if (!require __DIR__ . '/autoload.php') {
    throw new DemoConfigError('Predis is not installed: apt-get install php-predis, or composer install in php-demo/.');
}

demo_configure_session(demo_config());

/**
 * The demo's settings, from the environment (php -S and Apache pass it through).
 *
 * DEMO_REDIS_MODE=sentinel|cluster makes DEMO_REDIS a comma list of URIs
 * (the sentinels, or seed nodes of the cluster); DEMO_SENTINEL_SERVICE
 * names the master the sentinels watch.
 *
 * @return array{redis:string, handler:string, serializer:string, prefix:string,
 *               lifetime:int, channel:string, socket_url:string, session_name:string,
 *               mode:string, service:string}
 */
function demo_config(): array
{
    static $config = null;
    if ($config !== null) {
        return $config;
    }
    $env = static fn (string $name, string $default): string =>
        (($value = getenv($name)) === false || $value === '') ? $default : $value;

    $config = [
        'redis' => $env('DEMO_REDIS', 'tcp://127.0.0.1:6379'),
        'handler' => $env('DEMO_SESSION_HANDLER', 'predis'),
        'serializer' => $env('DEMO_SERIALIZE_HANDLER', 'php'),
        'prefix' => $env('DEMO_PREDIS_PREFIX', ''),
        'lifetime' => $env('DEMO_GC_MAXLIFETIME', '1440'),
        'channel' => $env('DEMO_CHANNEL', 'session-bridge'),
        'socket_url' => $env('DEMO_SOCKET_URL', ''),
        'session_name' => $env('DEMO_SESSION_NAME', 'PHPSESSID'),
        'mode' => $env('DEMO_REDIS_MODE', 'single'),
        'service' => $env('DEMO_SENTINEL_SERVICE', 'mymaster'),
    ];
    if (!in_array($config['mode'], ['single', 'sentinel', 'cluster'], true)) {
        throw new DemoConfigError("DEMO_REDIS_MODE must be single, sentinel or cluster, not '{$config['mode']}'.");
    }
    if ($config['mode'] === 'sentinel' && $config['handler'] === 'phpredis') {
        throw new DemoConfigError('DEMO_REDIS_MODE=sentinel needs DEMO_SESSION_HANDLER=predis (phpredis 5 has no Sentinel session handler).');
    }
    if (!in_array($config['handler'], ['predis', 'phpredis'], true)) {
        throw new DemoConfigError("DEMO_SESSION_HANDLER must be 'predis' or 'phpredis', not '{$config['handler']}'.");
    }
    if (!in_array($config['serializer'], ['php', 'php_binary', 'php_serialize', 'igbinary'], true)) {
        throw new DemoConfigError("DEMO_SERIALIZE_HANDLER must be php, php_binary or php_serialize (or igbinary), not '{$config['serializer']}'.");
    }
    if (!ctype_digit($config['lifetime']) || (int) $config['lifetime'] < 1) {
        throw new DemoConfigError("DEMO_GC_MAXLIFETIME must be a positive number of seconds, not '{$config['lifetime']}'.");
    }
    $config['lifetime'] = (int) $config['lifetime'];
    if ($config['socket_url'] !== '' && !preg_match('~^((https?|wss?)://[^\s"\'<>]+|:\d{1,5})$~i', $config['socket_url'])) {
        throw new DemoConfigError("DEMO_SOCKET_URL must be an http(s):// URL or :PORT (this host), not '{$config['socket_url']}'.");
    }
    return $config;
}

/** The one Predis client of this request (sessions, when DEMO_SESSION_HANDLER=predis, and events). */
function demo_redis(): Predis\Client
{
    static $client = null;
    if ($client === null) {
        $config = demo_config();
        $options = $config['prefix'] !== '' ? ['prefix' => $config['prefix']] : [];
        $parameters = $config['mode'] === 'single' ? $config['redis'] : explode(',', $config['redis']);
        if ($config['mode'] === 'sentinel') {
            $options += ['replication' => 'sentinel', 'service' => $config['service']];
        } elseif ($config['mode'] === 'cluster') {
            $options += ['cluster' => 'redis'];
        }
        try {
            $client = new Predis\Client($parameters, $options);
        } catch (InvalidArgumentException $e) {
            throw new DemoConfigError("DEMO_REDIS is not a valid Predis URI: {$e->getMessage()}", 0, $e);
        }
        if ($config['mode'] === 'sentinel') {
            $client->getConnection()->setRetryWait(250);  // ask the sentinels again soon in a failover
        }
    }
    return $client;
}

/**
 * The Emitter. On a cluster, Predis 1.1 refuses PUBLISH (it has no key), so the
 * Emitter gets the node that owns the channel's slot; Redis Cluster forwards a
 * PUBLISH to every node, so daemons subscribed anywhere receive it.
 */
function demo_emitter(): SessionBridge\Emitter
{
    $config = demo_config();
    $client = demo_redis();
    if ($config['mode'] === 'cluster') {
        $cluster = $client->getConnection();
        $cluster->askSlotsMap();  // Predis 1.1 would guess the node from the seed list
        $slot = $cluster->getClusterStrategy()->getSlotByKey($config['channel']);
        $client = new Predis\Client($cluster->getConnectionBySlot($slot));
    }
    return new SessionBridge\Emitter($client, $config['channel']);
}

/**
 * The history position this request renders (read once): the page shows what
 * happened up to it, and its socket brings everything after it.
 */
function demo_position(): string
{
    static $position = null;
    return $position ??= demo_emitter()->position();
}

/**
 * The user's newest notices up to the rendered position, newest first, read
 * from session-bridge's history: what this page shows when it is made. A
 * notice published while the browser was between two pages is either here
 * (before the position) or replayed to the page's socket (after it).
 *
 * @return list<array{position: string, notice: array<string, mixed>}>
 */
function demo_recent_notices(int|string $userId, int $count = 50): array
{
    $stream = '{' . demo_config()['channel'] . '}:history';
    $entries = demo_redis()->executeRaw(['XREVRANGE', $stream, demo_position(), '-', 'COUNT', '500']);
    $notices = [];
    foreach (is_array($entries) ? $entries : [] as [$position, $fields]) {
        $message = json_decode((string) ($fields[1] ?? ''), true);
        if (is_array($message) && ($message['event'] ?? null) === 'notice'
            && (string) ($message['user'] ?? '') === (string) $userId && is_array($message['data'] ?? null)) {
            $notices[] = ['position' => $position, 'notice' => $message['data']];
            if (count($notices) >= $count) {
                break;
            }
        }
    }
    return $notices;
}

function demo_configure_session(array $config): void
{
    $settings = [
        'session.name' => $config['session_name'],
        'session.serialize_handler' => $config['serializer'],
        'session.gc_maxlifetime' => (string) $config['lifetime'],
        'session.use_only_cookies' => '1',
        'session.cookie_httponly' => '1',
        'session.cookie_samesite' => 'Lax',
    ];
    foreach ($settings as $name => $value) {
        if (ini_set($name, $value) === false) {
            throw new DemoConfigError("PHP refused $name=$value (is the extension loaded?).");
        }
    }
    if ($config['handler'] === 'phpredis') {
        if (!extension_loaded('redis')) {
            throw new DemoConfigError('DEMO_SESSION_HANDLER=phpredis needs the redis extension (apt-get install php-redis).');
        }
        if ($config['mode'] === 'cluster') {
            ini_set('session.save_handler', 'rediscluster');  // keys: PHPREDIS_CLUSTER_SESSION:<id>
            ini_set('session.save_path', demo_phpredis_cluster_save_path($config['redis']));
            return;
        }
        ini_set('session.save_handler', 'redis');
        ini_set('session.save_path', demo_phpredis_save_path($config['redis']));
        return;
    }
    $handler = new Predis\Session\Handler(demo_redis(), ['gc_maxlifetime' => $config['lifetime']]);
    session_set_save_handler($handler, true);
}

/**
 * Translates the Predis URI in DEMO_REDIS into phpredis's session.save_path:
 * tcp://host:port or redis://host:port/db -> tcp://host:port?database=db&auth=...,
 * unix:///path/to/sock -> unix:///path/to/sock. Keys get phpredis's default
 * prefix "PHPREDIS_SESSION:".
 */
function demo_phpredis_save_path(string $uri): string
{
    try {
        $p = Predis\Connection\Parameters::parse($uri);
    } catch (InvalidArgumentException $e) {
        throw new DemoConfigError("DEMO_REDIS is not a valid URI: {$e->getMessage()}", 0, $e);
    }
    $scheme = strtolower($p['scheme'] ?? 'tcp');
    if ($scheme === 'unix') {
        $base = 'unix://' . ($p['path'] ?? '');
    } elseif ($scheme === 'tcp' || $scheme === 'redis') {
        $host = $p['host'] ?? '127.0.0.1';
        $base = 'tcp://' . (str_contains($host, ':') ? "[$host]" : $host) . ':' . ($p['port'] ?? 6379);
    } else {
        throw new DemoConfigError("DEMO_REDIS scheme '$scheme' is not supported with DEMO_SESSION_HANDLER=phpredis.");
    }
    $query = [];
    if (isset($p['database']) && $p['database'] !== '') {
        $query['database'] = (int) $p['database'];
    }
    if (isset($p['password']) && $p['password'] !== '') {
        $query['auth'] = isset($p['username']) && $p['username'] !== '' ? [$p['username'], $p['password']] : $p['password'];
    }
    if (isset($p['timeout'])) {
        $query['timeout'] = (float) $p['timeout'];
    }
    return $query === [] ? $base : $base . '?' . http_build_query($query);
}

/** tcp://a:1,tcp://b:2 -> seed[]=a:1&seed[]=b:2 (phpredis's rediscluster session.save_path). */
function demo_phpredis_cluster_save_path(string $uris): string
{
    $seeds = [];
    foreach (explode(',', $uris) as $uri) {
        $p = Predis\Connection\Parameters::parse(trim($uri));
        $seeds[] = ($p['host'] ?? '127.0.0.1') . ':' . ($p['port'] ?? 6379);
    }
    return implode('&', array_map(static fn (string $seed): string => 'seed[]=' . $seed, $seeds))
        . '&timeout=2&read_timeout=2&failover=error';
}

/** Is the session cookie present? Pages start sessions only for visitors who have one. */
function demo_has_session_cookie(): bool
{
    $id = $_COOKIE[session_name()] ?? '';
    return is_string($id) && $id !== '';
}

/**
 * The common head of the POST endpoints that act on a session: POST only,
 * same origin only, and a session cookie, else $status with $error as JSON.
 */
function demo_require_session_post(int $status, string $error): void
{
    require_method('POST');
    require_same_origin();
    if (!demo_has_session_cookie()) {
        json_response($status, ['ok' => false, 'error' => $error]);
    }
}

/**
 * Starts the session. With $readOnly the data is read and the session closed
 * at once: nothing is written and the Redis TTL is not touched.
 */
function demo_session_start(bool $readOnly = false): void
{
    if (!session_start($readOnly ? ['read_and_close' => true] : [])) {
        throw new DemoStoreError('session_start() failed: the session store did not answer.');
    }
}

/** The logged-in user of the started session, or null. */
function demo_current_user(): ?array
{
    $id = $_SESSION['user_id'] ?? null;
    return is_int($id) ? demo_user_by_id($id) : null;
}

/** Where this session lives in Redis (for whoami.php and the page footer). */
function demo_session_key(string $id): string
{
    $config = demo_config();
    if ($config['handler'] === 'phpredis') {
        return ($config['mode'] === 'cluster' ? 'PHPREDIS_CLUSTER_SESSION:' : 'PHPREDIS_SESSION:') . $id;
    }
    return $config['prefix'] . $id;
}

/** The exception handler: a short, honest error page; details go to the log. */
function demo_fail(Throwable $e): void
{
    error_log('php-demo: ' . get_class($e) . ': ' . $e->getMessage() . ' at ' . $e->getFile() . ':' . $e->getLine());
    $status = 500;
    $message = 'internal error (see the server log)';
    if ($e instanceof DemoConfigError) {
        $message = 'configuration error: ' . $e->getMessage();
    } elseif ($e instanceof Predis\CommunicationException || $e instanceof DemoStoreError) {
        $status = 503;
        $message = 'the Redis server is unavailable: ' . $e->getMessage();
    } elseif ($e instanceof SessionBridge\EmitterException) {
        $status = 400;
        $message = $e->getMessage();
    }
    if (!headers_sent()) {
        http_response_code($status);
        header('Cache-Control: no-store');
    }
    if (str_contains($_SERVER['HTTP_ACCEPT'] ?? '', 'text/html')) {
        header('Content-Type: text/html; charset=utf-8');
        echo '<!doctype html><meta charset="utf-8"><title>Error</title><link rel="stylesheet" href="/style.css">',
            '<main class="box"><h1>Sorry</h1><p class="flash error">', h($message), '</p><p><a href="/">Back</a></p></main>';
        return;
    }
    header('Content-Type: application/json; charset=utf-8');
    echo json_encode(['ok' => false, 'error' => $message], JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE), "\n";
}
