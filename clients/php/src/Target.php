<?php

declare(strict_types=1);

namespace SessionBridge;

/**
 * Where an event goes: one user's sockets or one room. Made by
 * Emitter::toUser() and Emitter::to(); immutable, cheap, reusable.
 */
final class Target
{
    /** @param array{user?: int|string, room?: string} $address */
    public function __construct(private readonly Emitter $emitter, private readonly array $address)
    {
    }

    /**
     * Publishes the event; returns its position in the history.
     *
     * @param string      $event          non-empty event name, e.g. "notice"
     * @param mixed       $data           anything json_encode() accepts
     * @param string|null $idempotencyKey names the event: retrying with the same key
     *                                    (within history_seconds) publishes it once
     */
    public function emit(string $event, mixed $data = null, ?string $idempotencyKey = null): string
    {
        return $this->emitter->emitTo($this->address, $event, $data, $idempotencyKey);
    }

    /**
     * Ends every socket of this user: they receive session_ended with reason
     * "revoked" and are disconnected (live only: never replayed later).
     */
    public function disconnectSockets(): string
    {
        if (!isset($this->address['user'])) {
            throw new EmitterException('Only the sockets of a user can be disconnected.');
        }
        return $this->emitter->append(['disconnect' => ['user' => $this->address['user']]]);
    }
}
