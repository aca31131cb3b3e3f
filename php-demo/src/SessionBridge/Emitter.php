<?php

declare(strict_types=1);

namespace SessionBridge;

use Predis\ClientInterface;
use Predis\Response\ErrorInterface;
use Predis\Response\ServerException;

/**
 * Publishes events for session-bridge daemons through Predis.
 *
 *     $emitter = new SessionBridge\Emitter($predis);            // channel "session-bridge"
 *     $emitter->toUser(42)->emit('notice', ['text' => 'Hi']);  // every socket of user 42
 *     $emitter->toRoom('news')->emit('headline', $item);       // every socket in room "news"
 *     $emitter->broadcast('maintenance', ['in' => 300]);       // every connected socket
 *     $emitter->disconnectUser(42);                            // end user 42's sockets
 *
 * Each call sends one PUBLISH with the JSON message described in the
 * session-bridge SPEC (section 5) and returns PUBLISH's reply: the number of
 * daemons subscribed to the channel that received it (0 when none runs).
 *
 * The channel is published exactly as given. A Predis `prefix` option (often
 * set for session keys) is NOT applied to it, because the daemon subscribes to
 * the plain channel name from its own `channel` setting.
 */
final class Emitter
{
    /** The daemon drops messages larger than this (bytes of JSON). */
    public const MAX_MESSAGE_BYTES = 1048576;

    private const JSON_FLAGS = JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE
        | JSON_PRESERVE_ZERO_FRACTION;

    private ClientInterface $redis;
    private string $channel;

    public function __construct(ClientInterface $redis, string $channel = 'session-bridge')
    {
        if ($channel === '') {
            throw new EmitterException('The channel name must not be empty.');
        }
        $this->redis = $redis;
        $this->channel = $channel;
    }

    public function channel(): string
    {
        return $this->channel;
    }

    /** @param int|string $userId the id as stored in the session (room "user:<id>") */
    public function toUser($userId): Target
    {
        return new Target($this, ['user' => self::checkUserId($userId)]);
    }

    /** @param string $room a room name, e.g. "news" */
    public function toRoom($room): Target
    {
        if (!is_string($room) || $room === '') {
            throw new EmitterException('A room must be a non-empty string, got ' . self::describe($room) . '.');
        }
        return new Target($this, ['room' => $room]);
    }

    /**
     * Sends an event to every connected socket.
     *
     * @param mixed $data anything json_encode() accepts
     */
    public function broadcast($event, $data = null): int
    {
        return $this->emitTo([], $event, $data);
    }

    /** Ends every socket of this user (they receive session_ended, reason "revoked"). */
    public function disconnectUser($userId): int
    {
        return $this->publish(['disconnect' => ['user' => self::checkUserId($userId)]]);
    }

    /**
     * @internal used by Target; prefer toUser()/toRoom()/broadcast()
     * @param array<string, int|string> $address [] or ['user' => id] or ['room' => name]
     */
    public function emitTo(array $address, $event, $data = null): int
    {
        if (!is_string($event) || $event === '') {
            throw new EmitterException('An event name must be a non-empty string, got ' . self::describe($event) . '.');
        }
        return $this->publish(['event' => $event, 'data' => $data] + $address);
    }

    /** @param array<string, mixed> $message */
    private function publish(array $message): int
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

        // Built by hand so that a client-level key prefix does not rename the channel.
        $command = $this->redis->createCommand('publish', [$this->channel, $json]);
        $command->setRawArguments([$this->channel, $json]);
        $reply = $this->redis->executeCommand($command);

        if ($reply instanceof ErrorInterface) {
            // Only reached when the client was built with ['exceptions' => false].
            throw new ServerException($reply->getMessage());
        }
        return (int) $reply;
    }

    /**
     * The user ids online in a presence room (SPEC section 11), across every daemon:
     * the users announced as joined and not yet as left, as the daemons keep them
     * in the sorted set "{<channel>}:presence:<room>". Read as given: a Predis
     * `prefix` option is not applied to the key.
     *
     * @return list<int|string>
     */
    public function online(string $room): array
    {
        if ($room === '') {
            throw new EmitterException('A room must be a non-empty string, got an empty string.');
        }
        $key = '{' . $this->channel . '}:presence:' . $room;
        $command = $this->redis->createCommand('zrange', [$key, 0, -1]);
        $command->setRawArguments([$key, 0, -1]);
        $reply = $this->redis->executeCommand($command);
        if ($reply instanceof ErrorInterface) {
            throw new ServerException($reply->getMessage());
        }
        $users = [];
        foreach ($reply as $member) {
            $users[] = json_decode((string) $member, true, 2, JSON_THROW_ON_ERROR | JSON_BIGINT_AS_STRING);
        }
        return $users;
    }

    /** @return int|string */
    private static function checkUserId($userId)
    {
        if (is_int($userId) || (is_string($userId) && $userId !== '')) {
            return $userId;
        }
        throw new EmitterException('A user id must be an int or a non-empty string, got ' . self::describe($userId) . '.');
    }

    private static function describe($value): string
    {
        return is_string($value) ? ($value === '' ? 'an empty string' : 'a string') : get_debug_type($value);
    }
}
