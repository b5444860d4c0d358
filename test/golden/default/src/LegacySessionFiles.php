<?php

/**
 * Copied by session-migrate (`session-migrate generate php`, `apply`) from its php/ folder, like every
 * file beside it: do not edit this copy; regenerate instead.
 */

declare(strict_types=1);

namespace SessionMigrate;

/**
 * The old `files` save handler's plaintext session files, read while sessions move to Redis
 * (read-through mode, docs/runbook.md). Nothing is ever written here; only destroy() deletes a file.
 *
 * Paths are built as php-src ext/session/mod_files.c (ps_files_path_create) builds them:
 * dir / id[0] / ... / id[depth-1] / 'sess_' . id. A file is used only when every directory on the way
 * is a real directory and the file a regular file (no symbolic link anywhere), its mtime is less than
 * session.gc_maxlifetime seconds ago (PHP's files GC would delete it otherwise: ps_files_cleanup_dir),
 * and the ID is one PHP's files handler accepts (php_session_valid_key: [A-Za-z0-9,-]).
 */
final class LegacySessionFiles
{
    /** PHP's session ID charset and length (php-src ext/session/session.c, php_session_valid_key). */
    private const SESSION_ID_PATTERN = '/\A[A-Za-z0-9,-]{1,256}\z/';

    private const S_IFMT = 0170000;
    private const S_IFDIR = 0040000;
    private const S_IFREG = 0100000;

    private string $dir;

    private int $depth;

    /** @var callable(string): void */
    private $logger;

    /**
     * @param string        $dir    absolute base directory of the old save_path (the path of 'N;MODE;/path')
     * @param int           $depth  directory levels N of 'N;/path', 0 to 64
     * @param callable|null $logger receives one line per problem, naming the Redis key, never the ID
     *
     * @throws \InvalidArgumentException when $dir is not absolute or $depth is out of range
     */
    public function __construct(string $dir, int $depth, ?callable $logger = null)
    {
        if ($dir === '' || $dir[0] !== '/' || strpos($dir, "\0") !== false) {
            throw new \InvalidArgumentException('session-migrate: the read-through directory must be an absolute path');
        }
        if ($depth < 0 || $depth > 64) {
            throw new \InvalidArgumentException('session-migrate: the read-through depth must be 0 to 64');
        }
        $this->dir = rtrim($dir, '/') === '' ? '/' : rtrim($dir, '/');
        $this->depth = $depth;
        $this->logger = $logger ?? static function (string $message): void {
            error_log($message);
        };
    }

    /** Whether PHP's files handler would accept this ID (otherwise no file system access at all). */
    public static function validId(string $id): bool
    {
        return preg_match(self::SESSION_ID_PATTERN, $id) === 1;
    }

    /** Whether a live legacy file exists for the session. */
    public function exists(string $id): bool
    {
        return $this->stat($id) !== null;
    }

    /**
     * Reads a live legacy file under a shared flock (PHP's files handler holds an exclusive one while
     * a request uses the session, so a half-written file is never read). The opened file must be the
     * one lstat() saw (same device and inode), so a symbolic link swapped in is never followed.
     *
     * @param string $redisKey names the session in log lines
     *
     * @return string|null the file's bytes; null when there is no live regular file
     */
    public function read(string $id, string $redisKey): ?string
    {
        $seen = $this->stat($id);
        $path = $this->path($id);
        if ($seen === null || $path === null) {
            return null;
        }
        $handle = @fopen($path, 'rb');
        if ($handle === false) {
            $this->log(sprintf('read-through: cannot open the legacy session file of %s', $redisKey));
            return null;
        }
        try {
            if (!flock($handle, LOCK_SH)) {
                $this->log(sprintf('read-through: cannot lock the legacy session file of %s', $redisKey));
                return null;
            }
            $st = fstat($handle);
            if (
                $st === false || $st['dev'] !== $seen['dev'] || $st['ino'] !== $seen['ino']
                || ($st['mode'] & self::S_IFMT) !== self::S_IFREG
            ) {
                $this->log(sprintf('read-through: the legacy session file of %s changed identity; ignored', $redisKey));
                return null;
            }
            if (self::expired((int) $st['mtime'])) {
                return null;
            }
            $data = stream_get_contents($handle);
            if (!is_string($data) || strlen($data) !== (int) $st['size']) {
                $this->log(sprintf('read-through: short read of the legacy session file of %s', $redisKey));
                return null;
            }

            return $data;
        } finally {
            flock($handle, LOCK_UN);
            fclose($handle);
        }
    }

    /**
     * Deletes the session's legacy file, if there is a live one (best effort: a failure is logged).
     */
    public function delete(string $id, string $redisKey): void
    {
        $path = $this->path($id);
        if ($path === null || $this->stat($id) === null) {
            return;
        }
        if (!@unlink($path)) {
            clearstatcache();
            if (@lstat($path) !== false) {
                $this->log(sprintf(
                    'read-through: could not delete the legacy session file of %s (destroyed in Redis)',
                    $redisKey
                ));
            }
        }
    }

    /**
     * Path of a session's legacy file; null for an ID PHP would refuse.
     */
    private function path(string $id): ?string
    {
        if (!self::validId($id) || strlen($id) <= $this->depth) {
            return null;
        }
        $path = $this->dir === '/' ? '' : $this->dir;
        for ($i = 0; $i < $this->depth; $i++) {
            $path .= '/' . $id[$i];
        }

        return $path . '/sess_' . $id;
    }

    /**
     * lstat of a live legacy file (see the class comment).
     *
     * @return array<int|string, int>|null
     */
    private function stat(string $id): ?array
    {
        $path = $this->path($id);
        if ($path === null) {
            return null;
        }
        clearstatcache();
        $dir = $this->dir;
        for ($i = 0; $i <= $this->depth; $i++) {
            $st = @lstat($dir);
            if ($st === false || ($st['mode'] & self::S_IFMT) !== self::S_IFDIR) {
                return null; // missing, or a symbolic link / not a directory: never followed
            }
            if ($i < $this->depth) {
                $dir = ($dir === '/' ? '' : $dir) . '/' . $id[$i];
            }
        }
        $st = @lstat($path);
        if ($st === false || ($st['mode'] & self::S_IFMT) !== self::S_IFREG) {
            return null;
        }
        if (self::expired((int) $st['mtime'])) {
            return null;
        }

        return $st;
    }

    /** A file PHP's files GC would delete: mtime + gc_maxlifetime - now <= 0. */
    private static function expired(int $mtime): bool
    {
        return $mtime + EncryptedRedisSessionHandler::ttl() - time() <= 0;
    }

    private function log(string $message): void
    {
        ($this->logger)('session-migrate: ' . $message);
    }
}
