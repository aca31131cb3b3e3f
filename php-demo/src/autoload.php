<?php
/*
 * Makes Predis and SessionBridge\* loadable without composer:
 * composer's vendor/autoload.php when php-demo/vendor exists, otherwise the
 * system's Predis (Debian: apt-get install php-predis) plus a PSR-4 loader
 * for "SessionBridge\" -> the emitter package in clients/php/src/ (as
 * clients/php/composer.json declares; php-demo's composer.json requires it).
 *
 * Returns true when Predis\Client can be loaded.
 */

declare(strict_types=1);

spl_autoload_register(static function (string $class): void {
    if (str_starts_with($class, 'SessionBridge\\')) {
        $file = dirname(__DIR__, 2) . '/clients/php/src/' . str_replace('\\', '/', substr($class, 14)) . '.php';
        if (is_file($file)) {
            require $file;
        }
    }
});

return (static function (): bool {
    $candidates = [dirname(__DIR__) . '/vendor/autoload.php', 'Predis/autoload.php', '/usr/share/php/Predis/autoload.php'];
    foreach ($candidates as $candidate) {
        if (class_exists('Predis\Client')) {
            return true;
        }
        $file = stream_resolve_include_path($candidate);
        if ($file !== false) {
            require_once $file;
        }
    }
    return class_exists('Predis\Client');
})();
