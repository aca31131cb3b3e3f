<?php
/*
 * Router for PHP's built-in server:
 *   php -S 127.0.0.1:8090 -t php-demo/public php-demo/public/router.php
 * Existing files are served as usual (pages run, assets are sent); anything
 * else, and this file itself, is a 404. The demo also works without it.
 */

declare(strict_types=1);

$path = rawurldecode(parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH) ?: '/');
$file = realpath(__DIR__ . $path);

if ($file !== false && str_starts_with($file, __DIR__) && $file !== __FILE__
    && (is_file($file) || is_file($file . '/index.php'))) {
    return false;
}

http_response_code(404);
header('Content-Type: text/plain; charset=utf-8');
echo "404 Not Found\n";
if (str_starts_with($path, '/socket.io/')) {
    echo "This is the PHP server. Point the page at the session-bridge daemon with DEMO_SOCKET_URL,\n",
        "or serve both behind one origin (see deploy/nginx-session-bridge.conf).\n";
}
