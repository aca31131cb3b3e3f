<?php

declare(strict_types=1);

namespace SessionBridge;

/**
 * Where an event goes: one user's sockets or one room. Made by
 * Emitter::toUser() and Emitter::toRoom(); cheap, immutable, reusable.
 */
final class Target
{
    private Emitter $emitter;
    /** @var array<string, int|string> */
    private array $address;

    /** @param array<string, int|string> $address ['user' => id] or ['room' => name] */
    public function __construct(Emitter $emitter, array $address)
    {
        $this->emitter = $emitter;
        $this->address = $address;
    }

    /**
     * Publishes the event; returns how many daemons received it.
     *
     * @param string $event non-empty event name, e.g. "notice"
     * @param mixed  $data  anything json_encode() accepts
     */
    public function emit($event, $data = null): int
    {
        return $this->emitter->emitTo($this->address, $event, $data);
    }
}
