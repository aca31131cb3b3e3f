<?php
// Laravel 8 skeleton's redis section; REDIS_CLIENT picks phpredis or predis.
use Illuminate\Support\Str;

return [
    'default' => 'none',
    'connections' => [],
    'redis' => [
        'client' => env('REDIS_CLIENT', 'phpredis'),
        'options' => [
            'cluster' => 'redis',
            'prefix' => env('REDIS_PREFIX', Str::slug(env('APP_NAME', 'laravel'), '_') . '_database_'),
        ],
        'default' => ['host' => '127.0.0.1', 'port' => env('REDIS_PORT', '6379'), 'database' => '0'],
        'cache' => ['host' => '127.0.0.1', 'port' => env('REDIS_PORT', '6379'), 'database' => '1'],
    ],
];
