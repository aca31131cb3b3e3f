<?php

declare(strict_types=1);

namespace SessionBridge;

/**
 * The master took the event, but fewer replicas than the Emitter waits for
 * acknowledged it in time (or the connection broke before they could): a
 * failover now may lose it. It may also still arrive. Retry with the same
 * idempotency key: the event is then published once, whichever happened.
 */
final class NotReplicated extends \RuntimeException
{
    /** @param string $position where the master put it (it may not survive a failover) */
    public function __construct(string $message, public readonly string $position, ?\Throwable $previous = null)
    {
        parent::__construct($message, 0, $previous);
    }
}
