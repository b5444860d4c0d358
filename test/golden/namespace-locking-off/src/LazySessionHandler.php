<?php

/**
 * Copied by session-migrate (`session-migrate generate php`, `apply`) from its php/ folder, like every
 * file beside it: do not edit this copy; regenerate instead.
 */

declare(strict_types=1);

namespace Acme\Session;

/**
 * The save handler the bootstrap registers with PHP on every request. It builds the real handler
 * (key ring, Redis connection) on the first open(), so a request that never starts a session reads
 * no key and opens no connection. If building fails, open() returns false and logs one line with the
 * reason, so session_start() fails visibly ("Failed to initialize storage module: user") instead of
 * using any other storage.
 */
final class LazySessionHandler implements \SessionHandlerInterface, \SessionUpdateTimestampHandlerInterface
{
    /** @var callable(): EncryptedRedisSessionHandler */
    private $build;

    private ?EncryptedRedisSessionHandler $handler = null;

    /**
     * @param callable(): EncryptedRedisSessionHandler $build builds the real handler; may throw
     */
    public function __construct(callable $build)
    {
        $this->build = $build;
    }

    /** The real handler, once open() built it (null before). */
    public function handler(): ?EncryptedRedisSessionHandler
    {
        return $this->handler;
    }

    /**
     * @param string $path session.save_path
     * @param string $name session name
     */
    public function open($path, $name): bool
    {
        if ($this->handler === null) {
            try {
                $this->handler = ($this->build)();
            } catch (\Throwable $e) {
                $reason = preg_replace('/^session-migrate: /', '', $e->getMessage());
                error_log(sprintf('session-migrate: sessions are unavailable: %s (%s)', $reason, get_class($e)));
                return false;
            }
        }

        return $this->handler->open($path, $name);
    }

    public function close(): bool
    {
        return $this->handler === null || $this->handler->close();
    }

    /**
     * @param string $id
     *
     * @return string|false
     */
    #[\ReturnTypeWillChange]
    public function read($id)
    {
        return $this->handler !== null ? $this->handler->read($id) : false;
    }

    /**
     * @param string $id
     * @param string $data
     */
    public function write($id, $data): bool
    {
        return $this->handler !== null && $this->handler->write($id, $data);
    }

    /** @param string $id */
    public function destroy($id): bool
    {
        return $this->handler !== null && $this->handler->destroy($id);
    }

    /**
     * @param int $max_lifetime
     *
     * @return int|false
     */
    #[\ReturnTypeWillChange]
    public function gc($max_lifetime)
    {
        return $this->handler !== null ? $this->handler->gc($max_lifetime) : false;
    }

    /** @param string $id */
    public function validateId($id): bool
    {
        // true without a handler: PHP then calls read(), which fails; never a new ID for an error.
        return $this->handler === null || $this->handler->validateId($id);
    }

    /**
     * @param string $id
     * @param string $data
     */
    public function updateTimestamp($id, $data): bool
    {
        return $this->handler !== null && $this->handler->updateTimestamp($id, $data);
    }
}
