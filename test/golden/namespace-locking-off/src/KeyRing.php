<?php

/**
 * Copied by session-migrate (`session-migrate generate php`, `apply`) from its php/ folder, like every
 * file beside it: do not edit this copy; regenerate instead.
 */

declare(strict_types=1);

namespace Acme\Session;

/**
 * The keys of one deployment (docs/keys.md): a lookup key that names Redis keys, the current master key
 * that seals every write, and previous master keys whose values must still open. Key IDs and
 * encryption keys are derived as docs/envelope.md specifies ("Derived keys"):
 *
 *   K_enc     crypto_kdf_derive_from_key(32, 1, "sessmig1", master)
 *   K_lookup  crypto_kdf_derive_from_key(32, 2, "sessmig1", master)   (a single key only; a ring has its own)
 *   key ID    first 8 bytes of crypto_kdf_derive_from_key(16, 3, "sessmig1", master)
 *   lookup ID first 8 bytes of crypto_kdf_derive_from_key(16, 4, "sessmig1", K_lookup)
 *
 * The encryption key of a previous master key is derived only when a value sealed under it is opened,
 * so a request that only touches current sessions derives one K_enc. Nothing here is ever logged.
 */
final class KeyRing
{
    /** First line of a key ring file (docs/keys.md). */
    public const HEADER = 'session-migrate-keyring 1';

    /** Length of a master key and of the lookup key, in bytes. */
    public const KEY_BYTES = 32;

    /** Length of a raw key ID, in bytes (printed as 16 hex characters). */
    public const KEY_ID_BYTES = 8;

    private const KDF_CONTEXT = 'sessmig1';
    private const KDF_ID_ENCRYPTION = 1;
    private const KDF_ID_LOOKUP = 2;
    private const KDF_ID_KEY_ID = 3;
    private const KDF_ID_LOOKUP_ID = 4;

    private string $lookupKey;

    private string $currentKeyId;

    /** @var array<string, string> raw key ID => master key, current first */
    private array $masterKeys = [];

    /** @var array<string, string> raw key ID => K_enc, derived on first use */
    private array $encryptionKeys = [];

    private bool $wiped = false;

    /**
     * @param string   $lookupKey the 32-byte lookup key
     * @param string   $current   the current 32-byte master key
     * @param string[] $previous  previous 32-byte master keys, newest first
     *
     * @throws \InvalidArgumentException when a key is not 32 bytes
     */
    public function __construct(string $lookupKey, string $current, array $previous = [])
    {
        if (strlen($lookupKey) !== self::KEY_BYTES) {
            throw new \InvalidArgumentException('session-migrate: the key ring\'s lookup key is not 32 raw bytes');
        }
        $this->lookupKey = $lookupKey;
        $this->currentKeyId = '';
        foreach (array_merge([$current], array_values($previous)) as $index => $masterKey) {
            if (!is_string($masterKey) || strlen($masterKey) !== self::KEY_BYTES) {
                throw new \InvalidArgumentException(sprintf(
                    'session-migrate: master key #%d is not %d raw bytes',
                    $index,
                    self::KEY_BYTES
                ));
            }
            $keyId = self::deriveKeyId($masterKey);
            if ($index === 0) {
                $this->currentKeyId = $keyId;
            }
            if (!isset($this->masterKeys[$keyId])) {
                $this->masterKeys[$keyId] = $masterKey;
            }
        }
    }

    /**
     * A ring made from master keys alone, as docs/keys.md defines for a single key: the lookup key
     * is derived from the first (current) one.
     *
     * @param string[] $masterKeys 32-byte master keys, current first
     *
     * @throws \InvalidArgumentException when the list is empty or a key is not 32 bytes
     */
    public static function fromMasterKeys(array $masterKeys): self
    {
        $masterKeys = array_values($masterKeys);
        if ($masterKeys === []) {
            throw new \InvalidArgumentException('session-migrate: the master key ring is empty');
        }
        $current = $masterKeys[0];
        if (!is_string($current) || strlen($current) !== self::KEY_BYTES) {
            throw new \InvalidArgumentException(
                sprintf('session-migrate: master key #0 is not %d raw bytes', self::KEY_BYTES)
            );
        }

        return new self(self::deriveLookupKey($current), $current, array_slice($masterKeys, 1));
    }

    /**
     * Parses key text (docs/keys.md): a single master key (44 characters of standard base64; a ring of
     * one whose lookup key is derived from it) or a key ring:
     *
     *   session-migrate-keyring 1
     *   lookup <32-byte lookup key, standard base64>
     *   current <master key>
     *   previous <master key>          (zero or more)
     *   end
     *
     * with '#' comment lines and blank lines ignored. Decoding is strict and canonical (the same rule
     * as the TypeScript CLI and docs/keyring-vectors.json).
     *
     * @param string $text   the text; its copy here is wiped before returning
     * @param string $source names the text in error messages (a file path, an environment variable)
     *
     * @throws \RuntimeException for malformed text, a truncated ring (no 'end' line), a missing or
     *                           repeated lookup/current line, or two keys with the same key ID; the
     *                           message names $source and the line, never the text
     */
    public static function fromText(string $text, string $source): self
    {
        $lines = explode("\n", $text);
        sodium_memzero($text);
        try {
            return self::isRingText($lines) ? self::parseRing($lines, $source) : self::parseSingle($lines, $source);
        } finally {
            self::wipeStrings($lines);
        }
    }

    /** Lookup ID: 16 lowercase hex characters, safe to log; it stays the same when master keys rotate. */
    public function lookupId(): string
    {
        return bin2hex(substr(
            sodium_crypto_kdf_derive_from_key(16, self::KDF_ID_LOOKUP_ID, self::KDF_CONTEXT, $this->lookupKey),
            0,
            self::KEY_ID_BYTES
        ));
    }

    /** The 32-byte lookup key (names Redis keys through a keyed BLAKE2b hash). */
    public function lookupKey(): string
    {
        return $this->lookupKey;
    }

    /** Raw 8-byte key ID of the current master key. */
    public function currentKeyId(): string
    {
        return $this->currentKeyId;
    }

    /**
     * Key IDs of every key in the ring, current first, as 16 lowercase hex characters each.
     *
     * @return string[]
     */
    public function keyIds(): array
    {
        $ids = [];
        foreach ($this->masterKeys as $rawKeyId => $unused) {
            $ids[] = bin2hex((string) $rawKeyId); // (string): an array key of digits only is an int
        }

        return $ids;
    }

    /**
     * K_enc of the master key with this raw key ID, derived on first use; null for a key ID the ring
     * does not hold.
     */
    public function encryptionKey(string $rawKeyId): ?string
    {
        if (isset($this->encryptionKeys[$rawKeyId])) {
            return $this->encryptionKeys[$rawKeyId];
        }
        if (!isset($this->masterKeys[$rawKeyId])) {
            return null;
        }

        return $this->encryptionKeys[$rawKeyId] = sodium_crypto_kdf_derive_from_key(
            32,
            self::KDF_ID_ENCRYPTION,
            self::KDF_CONTEXT,
            $this->masterKeys[$rawKeyId]
        );
    }

    /**
     * A 32-byte key for one purpose of this deployment other than naming and sealing sessions (for
     * example authenticating the Sentinel master cache), derived from the lookup key with a KDF ID
     * that the envelope does not use (docs/envelope.md uses 1 to 4 with master keys and 4 with the
     * lookup key).
     *
     * @param int $purpose 100 or more
     */
    public function purposeKey(int $purpose): string
    {
        if ($purpose < 100) {
            throw new \InvalidArgumentException('session-migrate: purpose key IDs start at 100');
        }

        return sodium_crypto_kdf_derive_from_key(32, $purpose, self::KDF_CONTEXT, $this->lookupKey);
    }

    /** Zeroes every key this ring holds (sodium_memzero); the ring is unusable afterwards. */
    public function wipe(): void
    {
        self::wipeStrings($this->masterKeys);
        self::wipeStrings($this->encryptionKeys);
        sodium_memzero($this->lookupKey);
        $this->lookupKey = str_repeat("\0", self::KEY_BYTES);
        $this->currentKeyId = '';
        $this->wiped = true;
    }

    /** Whether wipe() ran: the ring holds no keys any more. */
    public function isWiped(): bool
    {
        return $this->wiped;
    }

    /** Raw 8-byte key ID of a master key. */
    private static function deriveKeyId(string $masterKey): string
    {
        return substr(
            sodium_crypto_kdf_derive_from_key(16, self::KDF_ID_KEY_ID, self::KDF_CONTEXT, $masterKey),
            0,
            self::KEY_ID_BYTES
        );
    }

    private static function deriveLookupKey(string $masterKey): string
    {
        return sodium_crypto_kdf_derive_from_key(32, self::KDF_ID_LOOKUP, self::KDF_CONTEXT, $masterKey);
    }

    /** @param string[] $lines */
    private static function isRingText(array $lines): bool
    {
        foreach ($lines as $raw) {
            $line = trim($raw);
            if ($line === '' || $line[0] === '#') {
                continue;
            }

            return preg_split('/\s+/', $line)[0] === 'session-migrate-keyring';
        }

        return false;
    }

    /** @param string[] $lines */
    private static function parseSingle(array $lines, string $source): self
    {
        $single = trim(implode("\n", $lines));
        if ($single === '') {
            throw new \RuntimeException(sprintf(
                'session-migrate: %s: empty; expected a session-migrate key or key ring',
                $source
            ));
        }
        if (strpos($single, "\n") !== false) {
            sodium_memzero($single);
            throw new \RuntimeException(sprintf(
                'session-migrate: %s: not a session-migrate key (several lines, but no \'%s\' header line)',
                $source,
                self::HEADER
            ));
        }
        $current = self::decodeKey($single, $source);

        return new self(self::deriveLookupKey($current), $current);
    }

    /** @param string[] $lines */
    private static function parseRing(array $lines, string $source): self
    {
        $lookup = null;
        $current = null;
        $previous = [];
        $lineOf = [];
        $sawHeader = false;
        $ended = false;
        try {
            foreach ($lines as $i => $raw) {
                $n = $i + 1;
                $line = trim($raw);
                if ($line === '' || $line[0] === '#') {
                    continue;
                }
                if ($ended) {
                    throw self::ringError($source, sprintf('line %d: text after the \'end\' line', $n));
                }
                if (!$sawHeader) {
                    if ($line !== self::HEADER) {
                        throw self::ringError($source, sprintf(
                            'line %d: unsupported key ring version (expected \'%s\')',
                            $n,
                            self::HEADER
                        ));
                    }
                    $sawHeader = true;
                    continue;
                }
                if ($line === 'end') {
                    $ended = true;
                    continue;
                }
                $parts = preg_split('/[ \t]+/', $line);
                $entry = is_array($parts) ? $parts[0] : '';
                $known = in_array($entry, ['lookup', 'current', 'previous'], true);
                if (!is_array($parts) || count($parts) !== 2 || !$known) {
                    throw self::ringError($source, sprintf(
                        'line %d: expected \'lookup\', \'current\' or \'previous\' followed by one key, or \'end\'',
                        $n
                    ));
                }
                $key = self::decodeKey($parts[1], sprintf('%s: line %d (%s)', $source, $n, $entry));
                sodium_memzero($parts[1]);
                if ($entry === 'previous') {
                    $previous[] = $key;
                    $lineOf[] = $n;
                    continue;
                }
                if (($entry === 'lookup' ? $lookup : $current) !== null) {
                    throw self::ringError($source, sprintf(
                        $entry === 'lookup'
                            ? 'line %d: a second \'lookup\' line (a ring has exactly one lookup key)'
                            : 'line %d: a second \'current\' line (a ring has exactly one current key;'
                            . ' older ones are \'previous\')',
                        $n
                    ));
                }
                if ($entry === 'lookup') {
                    $lookup = $key;
                } else {
                    $current = $key;
                    array_unshift($lineOf, $n);
                }
            }
            if (!$sawHeader) {
                throw self::ringError($source, sprintf('no \'%s\' header line', self::HEADER));
            }
            if (!$ended) {
                throw self::ringError($source, 'truncated: no \'end\' line (restore the ring from its backup)');
            }
            if ($lookup === null) {
                throw self::ringError($source, 'no \'lookup\' line');
            }
            if ($current === null) {
                throw self::ringError($source, 'no \'current\' line');
            }
            $seen = [];
            foreach (array_merge([$current], $previous) as $index => $masterKey) {
                $keyId = bin2hex(self::deriveKeyId($masterKey));
                if (isset($seen[$keyId])) {
                    throw self::ringError($source, sprintf(
                        'key ID %s appears twice (lines %d and %d); remove the duplicate line',
                        $keyId,
                        $seen[$keyId],
                        $lineOf[$index]
                    ));
                }
                $seen[$keyId] = $lineOf[$index];
            }

            return new self($lookup, $current, $previous);
        } finally {
            // Zeroed when nothing else holds them (an error); released when the ring holds them.
            self::wipeStrings($previous);
            if (is_string($lookup)) {
                sodium_memzero($lookup);
            }
            if (is_string($current)) {
                sodium_memzero($current);
            }
        }
    }

    /**
     * Strictly decodes key text: 44 characters of standard, padded base64 (white space around it
     * allowed) giving exactly 32 bytes, and canonical (re-encoding gives the same text: base64_decode()
     * ignores the unused low bits of the last character, so '...c=' and '...d=' would name one key).
     * The error message names $source, never the text.
     *
     * @throws \RuntimeException when the text is not such a key
     */
    public static function decodeKey(string $text, string $source): string
    {
        $trimmed = trim($text, " \t\n\r\0\x0B");
        sodium_memzero($text);
        $key = preg_match('~\A[A-Za-z0-9+/]{43}=\z~', $trimmed) === 1 ? base64_decode($trimmed, true) : false;
        if (is_string($key)) {
            $canonical = base64_encode($key);
            if (!hash_equals($canonical, $trimmed)) {
                sodium_memzero($key);
                $key = false;
            }
            sodium_memzero($canonical);
        }
        sodium_memzero($trimmed);
        if (!is_string($key) || strlen($key) !== self::KEY_BYTES) {
            throw new \RuntimeException(sprintf(
                'session-migrate: %s: not a session-migrate key (expected %d bytes as 44 characters of'
                . ' standard base64; create one with \'session-migrate keys generate --out FILE\')',
                $source,
                self::KEY_BYTES
            ));
        }

        return $key;
    }

    private static function ringError(string $source, string $message): \RuntimeException
    {
        return new \RuntimeException(sprintf('session-migrate: %s: %s', $source, $message));
    }

    /**
     * Zeroes the strings of an array (a string still shared with another variable is released, not
     * zeroed: sodium_memzero separates it first) and empties it.
     *
     * @param array<int|string, mixed> $strings
     */
    private static function wipeStrings(array &$strings): void
    {
        foreach ($strings as $k => $value) {
            if (is_string($value)) {
                sodium_memzero($strings[$k]);
            }
        }
        $strings = [];
    }
}
