<?php

/**
 * Copied by session-migrate (`session-migrate generate php`, `apply`) from its php/ folder, like every
 * file beside it: do not edit this copy; regenerate instead.
 */

declare(strict_types=1);

namespace Acme\Session;

/**
 * Envelope version 1, key layout 2 (docs/envelope.md, the one specification shared with the
 * TypeScript migrator and checked against docs/envelope-vectors.json):
 *
 *   session key    prefix . '{' . hex(BLAKE2b-256(session ID, keyed with K_lookup)) . '}'
 *   tombstone key  prefix . 'destroyed:{' . the same 64 hex characters . '}'
 *   lock key       prefix . 'lock:{' . the same 64 hex characters . '}'
 *   value          "SM" | 0x01 | key ID (8) | nonce (24) | XChaCha20-Poly1305-IETF ciphertext + tag
 *   associated data  the 11-byte header . the session key name
 *
 * The braces are a Redis Cluster hash tag: a session, its tombstone and its lock share one hash slot,
 * so one Lua script may touch all three. No session ID is ever stored in Redis.
 */
final class Envelope
{
    /** Default prefix of Redis key names. */
    public const DEFAULT_PREFIX = 'smsess:';

    /** Infix of tombstone key names. */
    public const TOMBSTONE_INFIX = 'destroyed:';

    /** Infix of lock key names. */
    public const LOCK_INFIX = 'lock:';

    private const MAGIC = 'SM';
    private const VERSION = "\x01";
    private const HEADER_BYTES = 11;
    private const NONCE_BYTES = 24;
    private const TAG_BYTES = 16;
    private const MIN_ENVELOPE_BYTES = self::HEADER_BYTES + self::NONCE_BYTES + self::TAG_BYTES;

    private KeyRing $keys;

    private string $prefix;

    /** The last session ID named and its digest: a request names the same session several times. */
    private string $lastId = '';

    private string $lastDigest = '';

    /**
     * @param KeyRing $keys   the deployment's keys
     * @param string  $prefix prefix of Redis key names; must not hold "{" or "}" (the hash tag follows it)
     *
     * @throws \InvalidArgumentException for a prefix with a brace
     */
    public function __construct(KeyRing $keys, string $prefix = self::DEFAULT_PREFIX)
    {
        if (strpbrk($prefix, '{}') !== false) {
            throw new \InvalidArgumentException(
                'session-migrate: the key prefix must not contain "{" or "}" (key layout 2 puts a hash tag after it)'
            );
        }
        $this->keys = $keys;
        $this->prefix = $prefix;
    }

    /** The key ring (for its IDs: lookupId(), keyIds()). */
    public function keys(): KeyRing
    {
        return $this->keys;
    }

    /**
     * Redis key name of a session.
     *
     * @param string $sessionId the PHP session ID (charset [A-Za-z0-9,-])
     */
    public function keyName(string $sessionId): string
    {
        return $this->prefix . '{' . $this->digest($sessionId) . '}';
    }

    /** Redis key name of a session's tombstone (read-through mode's destroy() writes it). */
    public function tombstoneName(string $sessionId): string
    {
        return $this->prefix . self::TOMBSTONE_INFIX . '{' . $this->digest($sessionId) . '}';
    }

    /** Redis key name of a session's lock. */
    public function lockName(string $sessionId): string
    {
        return $this->prefix . self::LOCK_INFIX . '{' . $this->digest($sessionId) . '}';
    }

    /**
     * Encrypts a session payload for one Redis key with the current master key.
     *
     * @param string      $redisKey  the full Redis key name the value is stored under (bound as AD)
     * @param string      $plaintext the session bytes exactly as PHP's serializer wrote them
     * @param string|null $nonce     24 bytes; only tests pass one, otherwise random_bytes(24)
     *
     * @return string the envelope (strlen($plaintext) + 51 bytes)
     *
     * @throws \InvalidArgumentException for a nonce that is not 24 bytes
     */
    public function seal(string $redisKey, string $plaintext, ?string $nonce = null): string
    {
        $nonce = $nonce ?? random_bytes(self::NONCE_BYTES);
        if (strlen($nonce) !== self::NONCE_BYTES) {
            throw new \InvalidArgumentException(sprintf('session-migrate: a nonce is %d bytes', self::NONCE_BYTES));
        }
        $keyId = $this->keys->currentKeyId();
        $header = self::MAGIC . self::VERSION . $keyId;

        return $header . $nonce . sodium_crypto_aead_xchacha20poly1305_ietf_encrypt(
            $plaintext,
            $header . $redisKey,
            $nonce,
            (string) $this->keys->encryptionKey($keyId)
        );
    }

    /**
     * Opens an envelope read from $redisKey. Never throws for bad input; the checks run in the order
     * of the specification and the first failing one names the result.
     *
     * @return array{ok: bool, plaintext: ?string, reason: ?string, keyId: ?string}
     *         reason is one of not-envelope, unsupported-version, unknown-key-id, auth-failed;
     *         keyId is the envelope's key ID as 16 hex characters (null for not-envelope)
     */
    public function open(string $redisKey, string $envelope): array
    {
        if (strlen($envelope) < self::MIN_ENVELOPE_BYTES || strncmp($envelope, self::MAGIC, 2) !== 0) {
            return self::failure('not-envelope', null);
        }
        $rawKeyId = substr($envelope, 3, KeyRing::KEY_ID_BYTES);
        $keyId = bin2hex($rawKeyId);
        if ($envelope[2] !== self::VERSION) {
            return self::failure('unsupported-version', $keyId);
        }
        $key = $this->keys->encryptionKey($rawKeyId);
        if ($key === null) {
            return self::failure('unknown-key-id', $keyId);
        }
        try {
            $plaintext = sodium_crypto_aead_xchacha20poly1305_ietf_decrypt(
                substr($envelope, self::HEADER_BYTES + self::NONCE_BYTES),
                substr($envelope, 0, self::HEADER_BYTES) . $redisKey,
                substr($envelope, self::HEADER_BYTES, self::NONCE_BYTES),
                $key
            );
        } catch (\SodiumException $e) {
            $plaintext = false;
        }
        if (!is_string($plaintext)) {
            return self::failure('auth-failed', $keyId);
        }

        return ['ok' => true, 'plaintext' => $plaintext, 'reason' => null, 'keyId' => $keyId];
    }

    /** The 64 lowercase hex characters naming a session. */
    private function digest(string $sessionId): string
    {
        if ($sessionId !== $this->lastId || $this->lastDigest === '') {
            $this->lastDigest = bin2hex(sodium_crypto_generichash($sessionId, $this->keys->lookupKey(), 32));
            $this->lastId = $sessionId;
        }

        return $this->lastDigest;
    }

    /**
     * @return array{ok: false, plaintext: null, reason: string, keyId: ?string}
     */
    private static function failure(string $reason, ?string $keyId): array
    {
        return ['ok' => false, 'plaintext' => null, 'reason' => $reason, 'keyId' => $keyId];
    }
}
