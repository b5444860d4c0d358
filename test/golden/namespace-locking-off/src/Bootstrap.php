<?php

/**
 * Copied by session-migrate (`session-migrate generate php`, `apply`) from its php/ folder, like every
 * file beside it: do not edit this copy; regenerate instead.
 */

declare(strict_types=1);

namespace Acme\Session;

/**
 * What the generated session-migrate-bootstrap.php calls: registers a LazySessionHandler that builds
 * the real handler from the bootstrap's configuration on the first session_start() of a request.
 *
 * Configuration (baked into the bootstrap at generation time; no secret in it):
 *
 *   redis              ConnectionFactory's configuration (topology, host, port, database, username,
 *                      timeout, persistent, tls, seeds, sentinels, masterName)
 *   prefix             prefix of the session key names
 *   expectedLookupIds  lookup IDs the key ring must have ([] accepts any): key names derive from the
 *                      lookup key, so a wrong key would find no session and log everyone out silently;
 *                      with this set, it fails session_start() and logs both IDs instead
 *   readThrough        null, or ['dir' => ..., 'depth' => ...]: the legacy files save_path a Redis miss
 *                      falls back to while sessions move (docs/runbook.md)
 *   locking            SessionLock's options (enabled, waitMicros, retries, ttlSeconds, onFailure)
 *
 * Keys and passwords come from the environment of the PHP process (KeyRingLoader,
 * ConnectionFactory::PASSWORD_ENV, ConnectionFactory::SENTINEL_PASSWORD_ENV), never from here.
 */
final class Bootstrap
{
    private static bool $registered = false;

    /**
     * Registers the lazy handler with PHP (once per request).
     *
     * @param array<string, mixed> $config see the class comment
     *
     * @throws \RuntimeException when session_set_save_handler() refuses (a session is already active,
     *                           for example with session.auto_start=1)
     */
    public static function register(array $config): void
    {
        if (self::$registered) {
            return;
        }
        $handler = new LazySessionHandler(static function () use ($config): EncryptedRedisSessionHandler {
            return self::build($config);
        });
        if (!session_set_save_handler($handler, true)) {
            throw new \RuntimeException(
                'session-migrate: session_set_save_handler() failed; is session.auto_start on?'
            );
        }
        self::$registered = true;
        EncryptedRedisSessionHandler::rememberRegisteredHandler($handler);
    }

    /**
     * Builds the real handler: reads the key ring, checks its lookup ID, prepares the connection
     * (connected by the handler's open()).
     *
     * @param array<string, mixed> $config see the class comment
     * @param callable|null        $logger default error_log()
     *
     * @throws \RuntimeException when an extension or the key is missing, the key is malformed or not
     *                           the expected one; \InvalidArgumentException for a bad configuration
     */
    public static function build(array $config, ?callable $logger = null): EncryptedRedisSessionHandler
    {
        if (!extension_loaded('redis') || !extension_loaded('sodium')) {
            throw new \RuntimeException('session-migrate: the PHP extensions redis and sodium are both required');
        }
        $keys = KeyRingLoader::fromEnvironment();
        $expected = $config['expectedLookupIds'] ?? [];
        if ($expected !== [] && !in_array($keys->lookupId(), $expected, true)) {
            throw new \RuntimeException(sprintf(
                'session-migrate: the key from the environment has lookup ID %s (current key ID %s),'
                . ' but this deployment expects lookup ID %s',
                $keys->lookupId(),
                bin2hex($keys->currentKeyId()),
                implode(' or ', $expected)
            ));
        }
        $readThrough = $config['readThrough'] ?? null;
        $legacy = is_array($readThrough)
            ? new LegacySessionFiles((string) $readThrough['dir'], (int) $readThrough['depth'], $logger)
            : null;

        return new EncryptedRedisSessionHandler(
            new SessionStore(new ConnectionFactory($config['redis'] ?? [], $keys, $logger)),
            new Envelope($keys, (string) ($config['prefix'] ?? Envelope::DEFAULT_PREFIX)),
            new SessionLock($config['locking'] ?? []),
            $legacy,
            $logger
        );
    }
}
