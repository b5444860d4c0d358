<?php

/**
 * Copied by session-migrate (`session-migrate generate php`, `apply`) from its php/ folder, like every
 * file beside it: do not edit this copy; regenerate instead.
 */

declare(strict_types=1);

namespace SessionMigrate;

/**
 * Loads the key ring from the environment of the PHP process (docs/keys.md), never from php.ini.
 * Exactly one of these may be set:
 *
 *   SESSION_MIGRATE_KEY_RING_FILE  path of a key ring file (or a single key file)
 *   SESSION_MIGRATE_KEY_FILE       path of a single key file (or a key ring file)
 *   SESSION_MIGRATE_KEY            the key or key ring text itself
 *   SESSION_MIGRATE_KEY_PROVIDER   path of a PHP file returning a callable that returns the text
 *
 * A key file is read with one open(): fstat() on the open file checks that it is a regular file not
 * accessible to others (mode o+rwx; the group may read, as PHP-FPM often reads through it), then one
 * read. A file whose stat signature (device, inode, size, mtime, ctime, mode) is unchanged since the
 * last load in this process is not read or parsed again; its ring is reused. (PHP resets static state
 * at the end of every request, so under PHP-FPM this saves work within a request, and in long-running
 * CLI workers across their sessions.)
 */
final class KeyRingLoader
{
    public const KEY_ENV = 'SESSION_MIGRATE_KEY';
    public const KEY_FILE_ENV = 'SESSION_MIGRATE_KEY_FILE';
    public const KEY_RING_FILE_ENV = 'SESSION_MIGRATE_KEY_RING_FILE';
    public const KEY_PROVIDER_ENV = 'SESSION_MIGRATE_KEY_PROVIDER';

    /** Largest key or key ring file read, in bytes. */
    private const MAX_KEY_FILE_BYTES = 65536;

    /** @var array<string, array{0: string, 1: KeyRing}> path => [stat signature, ring] */
    private static array $fileCache = [];

    /**
     * Reads the key ring named by the environment (see the class comment).
     *
     * @throws \RuntimeException when none or several of the variables are set, or the key cannot be
     *                           read or is malformed; the message names the variable or file, never
     *                           key text
     */
    public static function fromEnvironment(): KeyRing
    {
        $set = [];
        foreach ([self::KEY_RING_FILE_ENV, self::KEY_FILE_ENV, self::KEY_ENV, self::KEY_PROVIDER_ENV] as $name) {
            $value = getenv($name);
            if (is_string($value) && $value !== '') {
                $set[$name] = $value;
            }
        }
        if (count($set) > 1) {
            foreach ($set as $name => $value) {
                sodium_memzero($set[$name]);
            }
            throw new \RuntimeException(sprintf(
                'session-migrate: %s are all set; set only one',
                implode(' and ', array_keys($set))
            ));
        }
        foreach ($set as $name => $value) {
            if ($name === self::KEY_ENV) {
                return KeyRing::fromText($value, 'environment variable ' . $name);
            }
            if ($name === self::KEY_PROVIDER_ENV) {
                return self::fromProviderFile($value);
            }

            return self::fromFile($value);
        }
        throw new \RuntimeException(sprintf(
            'session-migrate: no master key: set %s or %s (preferred), %s or %s',
            self::KEY_FILE_ENV,
            self::KEY_RING_FILE_ENV,
            self::KEY_ENV,
            self::KEY_PROVIDER_ENV
        ));
    }

    /**
     * Reads a key ring file or a single key file (see the class comment for the checks and the cache).
     *
     * @throws \RuntimeException when the file is missing, unreadable, not a regular file, accessible
     *                           to others, too large, or malformed
     */
    public static function fromFile(string $path): KeyRing
    {
        $source = 'key file ' . $path;
        $handle = @fopen($path, 'rb');
        if ($handle === false) {
            clearstatcache(true, $path);
            throw new \RuntimeException(sprintf(
                is_file($path)
                    ? 'session-migrate: %s: cannot read it (permission denied?)'
                    : 'session-migrate: %s: not a regular file or does not exist',
                $source
            ));
        }
        try {
            $st = fstat($handle);
            if ($st === false || ($st['mode'] & 0170000) !== 0100000) {
                throw new \RuntimeException(
                    sprintf('session-migrate: %s: not a regular file or does not exist', $source)
                );
            }
            if (($st['mode'] & 0007) !== 0) {
                throw new \RuntimeException(sprintf(
                    'session-migrate: %s: accessible to others (mode %04o); fix with chmod o-rwx',
                    $source,
                    $st['mode'] & 0777
                ));
            }
            $signature = implode(':', [$st['dev'], $st['ino'], $st['size'], $st['mtime'], $st['ctime'], $st['mode']]);
            $cached = self::$fileCache[$path] ?? null;
            if ($cached !== null && $cached[0] === $signature && !$cached[1]->isWiped()) {
                return $cached[1];
            }
            $text = stream_get_contents($handle, self::MAX_KEY_FILE_BYTES + 1);
        } finally {
            fclose($handle);
        }
        if (!is_string($text)) {
            throw new \RuntimeException(sprintf('session-migrate: %s: cannot read it (permission denied?)', $source));
        }
        if (strlen($text) > self::MAX_KEY_FILE_BYTES) {
            sodium_memzero($text);
            throw new \RuntimeException(sprintf('session-migrate: %s: too large to be a key file', $source));
        }
        $ring = KeyRing::fromText($text, $source);
        self::$fileCache = [$path => [$signature, $ring]];

        return $ring;
    }

    /**
     * Loads a PHP file that returns a key provider callable (SESSION_MIGRATE_KEY_PROVIDER) and calls it.
     *
     * @throws \RuntimeException when the file is missing or does not return a callable, or as
     *                           fromCallable()
     */
    public static function fromProviderFile(string $path): KeyRing
    {
        $source = 'key provider ' . $path;
        if (!is_file($path)) {
            throw new \RuntimeException(sprintf('session-migrate: %s: not a regular file or does not exist', $source));
        }
        $provider = require $path;
        if (!is_callable($provider)) {
            throw new \RuntimeException(sprintf('session-migrate: %s: the file must return a callable', $source));
        }

        return self::fromCallable($provider, $source);
    }

    /**
     * Gets the key text from a callable the application provides (for example one that fetches a
     * secret from a secrets manager and caches it: templates/examples/aws-secrets-manager.php.example)
     * and parses it as KeyRing::fromText() does.
     *
     * @param callable(): string $provider returns a single base64 key or key ring text
     * @param string             $source   names the provider in error messages
     *
     * @throws \RuntimeException when the provider throws, returns no string, or the text is malformed
     *                           (the provider's exception message is not repeated: it may hold secrets)
     */
    public static function fromCallable(callable $provider, string $source = 'key provider'): KeyRing
    {
        try {
            $text = $provider();
        } catch (\Throwable $e) {
            throw new \RuntimeException(sprintf('session-migrate: %s failed (%s)', $source, get_class($e)));
        }
        if (!is_string($text)) {
            throw new \RuntimeException(
                sprintf('session-migrate: %s returned a %s, not key text', $source, gettype($text))
            );
        }

        return KeyRing::fromText($text, $source);
    }

    /** Forgets the rings read from files in this process (a test or a long-running worker that must re-read). */
    public static function clearCache(): void
    {
        self::$fileCache = [];
    }
}
