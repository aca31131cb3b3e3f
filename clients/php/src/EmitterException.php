<?php

declare(strict_types=1);

namespace SessionBridge;

/**
 * Thrown by Emitter for a message the daemon would refuse: an empty event
 * name, user id or room, data that json_encode() cannot encode, a message over
 * the daemon's 1 MiB limit, or disconnectSockets() on a room.
 *
 * Redis problems are not wrapped: Predis's own exceptions reach the caller.
 */
class EmitterException extends \InvalidArgumentException
{
}
