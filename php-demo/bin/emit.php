#!/usr/bin/env php
<?php
/*
 * Publishes one session-bridge event from a shell, through Predis and
 * SessionBridge\Emitter, exactly as PHP code would.
 *
 *   php bin/emit.php [--redis URI] [--channel NAME] [--prefix P]
 *                    (--user ID | --room NAME | --disconnect-user ID | nothing = everyone)
 *                    EVENT [JSON]
 *
 * Prints the event's position in the history.
 * Exit codes: 0 sent, 1 Redis error, 2 usage error, 3 rejected by the Emitter.
 */

declare(strict_types=1);

const USAGE = <<<'TXT'
usage: php emit.php [--redis URI] [--channel NAME] [--prefix P]
                    [--user ID | --room NAME] EVENT [JSON]
       php emit.php [--redis URI] [--channel NAME] --disconnect-user ID

  --redis URI           Predis connection URI (default $DEMO_REDIS or tcp://127.0.0.1:6379)
  --channel NAME        channel the daemons listen on (default $DEMO_CHANNEL or session-bridge)
  --prefix P            Predis key prefix option (it never applies to the channel)
  --user ID             deliver to every socket of this user (digits are sent as an int)
  --room NAME           deliver to every socket in this room
  --disconnect-user ID  end every socket of this user (reason "revoked")
  EVENT [JSON]          event name and its data as JSON text (default null; - reads stdin)

TXT;

function usage_error(string $message): never
{
    fwrite(STDERR, "emit.php: $message\n\n" . USAGE);
    exit(2);
}

/** @return array{0: array<string, string>, 1: list<string>} options and positional arguments */
function parse_arguments(array $argv): array
{
    $known = ['redis', 'channel', 'prefix', 'user', 'room', 'disconnect-user'];
    $options = [];
    $positional = [];
    for ($i = 1, $n = count($argv); $i < $n; $i++) {
        $arg = $argv[$i];
        if ($arg === '--') {
            array_push($positional, ...array_slice($argv, $i + 1));
            break;
        }
        if ($arg === '-h' || $arg === '--help') {
            fwrite(STDOUT, USAGE);
            exit(0);
        }
        if (!str_starts_with($arg, '--')) {
            $positional[] = $arg;
            continue;
        }
        [$name, $value] = array_pad(explode('=', substr($arg, 2), 2), 2, null);
        if (!in_array($name, $known, true)) {
            usage_error("unknown option --$name");
        }
        if ($value === null) {
            if (++$i >= $n) {
                usage_error("--$name needs a value");
            }
            $value = $argv[$i];
        }
        $options[$name] = $value;
    }
    return [$options, $positional];
}

/** "42" is sent as the int 42 (as PHP stores $_SESSION['user_id']), anything else as text. */
function user_id(string $id)
{
    return preg_match('/^-?[1-9][0-9]{0,17}$|^0$/', $id) ? (int) $id : $id;
}

[$options, $args] = parse_arguments($argv);
$targets = array_intersect_key($options, array_flip(['user', 'room', 'disconnect-user']));
if (count($targets) > 1) {
    usage_error('give at most one of --user, --room, --disconnect-user');
}
$disconnect = isset($options['disconnect-user']);
if ($disconnect ? $args !== [] : (count($args) < 1 || count($args) > 2)) {
    usage_error($disconnect ? '--disconnect-user takes no EVENT or JSON' : 'expected EVENT and optional JSON');
}
$data = null;
if (isset($args[1])) {
    try {
        $json = $args[1] === '-' ? stream_get_contents(STDIN) : $args[1];
        $data = json_decode($json, false, 512, JSON_THROW_ON_ERROR);
    } catch (JsonException $e) {
        usage_error('JSON argument is not valid JSON: ' . $e->getMessage());
    }
}

if (!require dirname(__DIR__) . '/src/autoload.php') {
    fwrite(STDERR, "emit.php: Predis is not installed (apt-get install php-predis, or composer install)\n");
    exit(1);
}

$redis = $options['redis'] ?? (getenv('DEMO_REDIS') ?: 'tcp://127.0.0.1:6379');
$channel = $options['channel'] ?? (getenv('DEMO_CHANNEL') ?: 'session-bridge');
$clientOptions = isset($options['prefix']) && $options['prefix'] !== '' ? ['prefix' => $options['prefix']] : [];

try {
    $emitter = new SessionBridge\Emitter(new Predis\Client($redis, $clientOptions), $channel);
    if ($disconnect) {
        $position = $emitter->toUser(user_id($options['disconnect-user']))->disconnectSockets();
    } elseif (isset($options['user'])) {
        $position = $emitter->toUser(user_id($options['user']))->emit($args[0], $data);
    } elseif (isset($options['room'])) {
        $position = $emitter->to($options['room'])->emit($args[0], $data);
    } else {
        $position = $emitter->broadcast($args[0], $data);
    }
} catch (SessionBridge\EmitterException $e) {
    fwrite(STDERR, 'emit.php: EmitterException: ' . $e->getMessage() . "\n");
    exit(3);
} catch (Predis\PredisException | InvalidArgumentException | TypeError $e) {
    fwrite(STDERR, 'emit.php: ' . get_class($e) . ': ' . $e->getMessage() . "\n");
    exit(1);
}

echo $position, "\n";
