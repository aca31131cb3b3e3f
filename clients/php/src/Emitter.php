<?php

declare(strict_types=1);

namespace SessionBridge;

use Predis\ClientInterface;
use Predis\Command\CommandInterface;
use Predis\Command\RawCommand;
use Predis\Connection\NodeConnectionInterface;
use Predis\PredisException;
use Predis\Response\ErrorInterface;
use Predis\Response\ServerException;

/**
 * Publishes events for session-bridge daemons through Predis, into the event
 * history they replay to sockets that come back.
 *
 *     $emitter = new SessionBridge\Emitter($predis);                // channel "session-bridge"
 *     $emitter->toUser(42)->emit('notice', ['text' => 'Hi']);      // every socket of user 42
 *     $emitter->to('news')->emit('headline', $item);               // every socket in room "news"
 *     $emitter->broadcast('maintenance', ['in' => 300]);           // every connected socket
 *     $emitter->toUser(42)->disconnectSockets();                   // end user 42's sockets
 *     $position = $emitter->position();                            // render it into the page
 *
 * Every call appends one message (the JSON of the session-bridge publish
 * format) to the history stream `{<channel>}:history` with one Lua script
 * (the same one `session-bridge emit` runs), which also trims the history to
 * what the daemons keep, and returns the message's position. Daemons follow
 * the stream, so they receive it as it is appended.
 *
 * Key names are used exactly as given: a Predis `prefix` option (often set
 * for session keys) is NOT applied to them, because the daemons read the plain
 * names derived from their own `channel` setting.
 *
 * Durability: Redis replicates asynchronously, so a master that dies can take
 * its newest writes with it. With `$replicas` > 0 every call then waits (WAIT)
 * until that many replicas have the event, and throws NotReplicated when they
 * do not acknowledge it within `$replicaTimeout` seconds. The default (null)
 * is 1 on a Predis Sentinel client (`replication => sentinel`), else 0. Give
 * an idempotency key to retry safely:
 *
 *     $emitter->toUser(42)->emit('shipped', $order, "order-{$order['id']}-shipped");
 *
 * the same key within the history's `history_seconds` publishes the event
 * once, however often it is retried.
 */
final class Emitter
{
    /** The daemon drops messages larger than this (bytes of JSON). */
    public const MAX_MESSAGE_BYTES = 1048576;
    /** What the history keeps when no daemon has told Redis its own settings yet. */
    public const DEFAULT_HISTORY_SIZE = 10000;
    public const DEFAULT_HISTORY_SECONDS = 300;
    /** Seconds an emit waits for its replicas to acknowledge it. */
    public const DEFAULT_REPLICA_TIMEOUT = 1.0;
    public const MAX_IDEMPOTENCY_KEY_BYTES = 200;

    private const SENTINEL_CLIENTS = [
        'Predis\Connection\Aggregate\SentinelReplication',  // Predis 1.1
        'Predis\Connection\Replication\SentinelReplication',  // Predis 2
    ];

    private const JSON_FLAGS = JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE
        | JSON_PRESERVE_ZERO_FRACTION;

    /** @var array<string, string> script name => Lua source */
    private static array $scripts = [];

    private readonly string $stream;
    private readonly string $retention;
    private readonly int $replicas;

    /**
     * @param int|null $replicas       replicas that must have each event before a call returns
     *                                 (null: 1 on a Sentinel client, else 0)
     * @param float    $replicaTimeout seconds to wait for them before NotReplicated
     */
    public function __construct(
        private readonly ClientInterface $redis,
        private readonly string $channel = 'session-bridge',
        ?int $replicas = null,
        private readonly float $replicaTimeout = self::DEFAULT_REPLICA_TIMEOUT,
    ) {
        if ($channel === '' || strpbrk($channel, '{}') !== false) {
            throw new EmitterException('The channel name must be non-empty and without { or }.');
        }
        if (($replicas !== null && $replicas < 0) || !($replicaTimeout > 0)) {
            throw new EmitterException('replicas must be 0 or more, and replicaTimeout more than 0 seconds.');
        }
        $this->stream = '{' . $channel . '}:history';
        $this->retention = '{' . $channel . '}:retention';
        $this->replicas = $replicas ?? (self::isSentinel($redis) ? 1 : 0);
    }

    /** How many replicas each event waits for. */
    public function replicas(): int
    {
        return $this->replicas;
    }

    public function channel(): string
    {
        return $this->channel;
    }

    /** Every socket of this user (room "user:<id>"), the id as stored in the session. */
    public function toUser(int|string $userId): Target
    {
        return new Target($this, ['user' => self::checkUserId($userId)]);
    }

    /** Every socket in this room, e.g. "news". */
    public function to(string $room): Target
    {
        if ($room === '') {
            throw new EmitterException('A room must be a non-empty string.');
        }
        return new Target($this, ['room' => $room]);
    }

    /** The name of to() in earlier versions. */
    public function toRoom(string $room): Target
    {
        return $this->to($room);
    }

    /** Sends an event to every connected socket; returns its position. */
    public function broadcast(string $event, mixed $data = null, ?string $idempotencyKey = null): string
    {
        return $this->emitTo([], $event, $data, $idempotencyKey);
    }

    /** Ends every socket of this user (they receive session_ended, reason "revoked"). */
    public function disconnectUser(int|string $userId): string
    {
        return $this->toUser($userId)->disconnectSockets();
    }

    /**
     * The history's position now. A page renders it and connects with
     * `io({auth: {since: "<position>"}})`: the socket then gets every event
     * for it published after the page was made, none twice.
     */
    public function position(): string
    {
        return (string) $this->runScript('position', [$this->stream], []);
    }

    /**
     * The user ids online in a presence room, across every daemon: those
     * announced as joined and not yet as left, as the daemons keep them in the
     * sorted set "{<channel>}:presence:<room>" (ids as stored: ints stay ints).
     *
     * @return list<int|string>
     */
    public function online(string $room): array
    {
        if ($room === '') {
            throw new EmitterException('A room must be a non-empty string.');
        }
        $key = '{' . $this->channel . '}:presence:' . $room;
        $users = [];
        foreach ((array) $this->execute('zrange', [$key, 0, -1]) as $member) {
            $users[] = json_decode((string) $member, true, 2, JSON_THROW_ON_ERROR | JSON_BIGINT_AS_STRING);
        }
        return $users;
    }

    /**
     * @internal used by Target
     * @param array<string, int|string> $address [] or ['user' => id] or ['room' => name]
     */
    public function emitTo(array $address, string $event, mixed $data = null, ?string $idempotencyKey = null): string
    {
        if ($event === '') {
            throw new EmitterException('An event name must be a non-empty string.');
        }
        return $this->append(['event' => $event, 'data' => $data] + $address, $idempotencyKey);
    }

    /**
     * @internal used by Target
     * @param array<string, mixed> $message
     */
    public function append(array $message, ?string $idempotencyKey = null): string
    {
        try {
            $json = json_encode($message, self::JSON_FLAGS);
        } catch (\JsonException $e) {
            throw new EmitterException('The event data cannot be encoded as JSON: ' . $e->getMessage(), 0, $e);
        }
        if (strlen($json) > self::MAX_MESSAGE_BYTES) {
            throw new EmitterException(sprintf(
                'The message is %d bytes of JSON; session-bridge accepts at most %d.',
                strlen($json),
                self::MAX_MESSAGE_BYTES
            ));
        }
        $keys = [$this->stream, $this->retention];
        $arguments = [$json, self::DEFAULT_HISTORY_SIZE, self::DEFAULT_HISTORY_SECONDS];
        if ($idempotencyKey !== null) {
            if ($idempotencyKey === '' || strlen($idempotencyKey) > self::MAX_IDEMPOTENCY_KEY_BYTES) {
                throw new EmitterException(sprintf(
                    'An idempotency key must be 1 to %d bytes.',
                    self::MAX_IDEMPOTENCY_KEY_BYTES
                ));
            }
            $keys[] = '{' . $this->channel . '}:sent:' . $idempotencyKey;
            $arguments[] = $idempotencyKey;
        }
        $ran = null;
        $position = (string) $this->runScript('append', $keys, $arguments, $ran);
        if ($this->replicas > 0) {
            $this->awaitReplicas($ran, $position);
        }
        return $position;
    }

    /**
     * WAIT on the very connection that ran the append: it counts the replicas
     * that have that connection's writes (a new connection has none to wait for).
     */
    private function awaitReplicas(CommandInterface $ran, string $position): void
    {
        $timeoutMs = max(1, (int) round($this->replicaTimeout * 1000));
        $wait = RawCommand::create('WAIT', $this->replicas, $timeoutMs);  // Predis 1.1 has no WAIT
        try {
            $acknowledged = (int) self::nodeOf($this->redis->getConnection(), $ran)->executeCommand($wait);
        } catch (PredisException $e) {
            throw new NotReplicated("Redis took the event at $position, then did not answer WAIT: {$e->getMessage()}", $position, $e);
        }
        if ($acknowledged < $this->replicas) {
            throw new NotReplicated(sprintf(
                'Redis took the event at %s, but %d of %d replicas acknowledged it within %.3g s.',
                $position,
                $acknowledged,
                $this->replicas,
                $this->replicaTimeout
            ), $position);
        }
    }

    /** The node connection a command went to (a replication or cluster client holds several). */
    private static function nodeOf(object $connection, CommandInterface $command): NodeConnectionInterface
    {
        if ($connection instanceof NodeConnectionInterface) {
            return $connection;
        }
        if (method_exists($connection, 'getConnectionByCommand')) {
            return $connection->getConnectionByCommand($command);  // Predis 2
        }
        return $connection->getConnection($command);  // Predis 1.1
    }

    private static function isSentinel(ClientInterface $redis): bool
    {
        $connection = $redis->getConnection();
        foreach (self::SENTINEL_CLIENTS as $class) {
            if ($connection instanceof $class) {
                return true;
            }
        }
        return false;
    }

    /**
     * EVALSHA, or EVAL the first time Redis has not seen the script. Commands
     * are built with raw arguments so that a client-level key prefix does not
     * rename the keys; cluster clients still route them by their keys.
     *
     * @param list<string> $keys
     * @param list<string|int> $arguments
     * @param CommandInterface|null $ran set to the command that ran
     */
    private function runScript(string $name, array $keys, array $arguments, ?CommandInterface &$ran = null): mixed
    {
        $source = self::$scripts[$name] ??= (string) file_get_contents(__DIR__ . '/lua/' . $name . '.lua');
        try {
            return $this->execute('evalsha', [sha1($source), count($keys), ...$keys, ...$arguments], $ran);
        } catch (ServerException $e) {
            if (!str_starts_with($e->getMessage(), 'NOSCRIPT')) {
                throw $e;
            }
        }
        return $this->execute('eval', [$source, count($keys), ...$keys, ...$arguments], $ran);
    }

    /** @param list<string|int> $arguments */
    private function execute(string $command, array $arguments, ?CommandInterface &$built = null): mixed
    {
        $built = $this->redis->createCommand($command, $arguments);
        $built->setRawArguments($arguments);
        $reply = $this->redis->executeCommand($built);
        if ($reply instanceof ErrorInterface) {
            // Only reached when the client was built with ['exceptions' => false].
            throw new ServerException($reply->getMessage());
        }
        return $reply;
    }

    private static function checkUserId(int|string $userId): int|string
    {
        if ($userId === '') {
            throw new EmitterException('A user id must be an int or a non-empty string.');
        }
        return $userId;
    }
}
