<?php

/**
 * Copied by session-migrate (`session-migrate generate php`, `apply`) from its php/ folder, like every
 * file beside it: do not edit this copy; regenerate instead.
 */

declare(strict_types=1);

namespace SessionMigrate;

/**
 * Redis could not answer: no connection, a timeout, an error reply (READONLY, MOVED, NOAUTH, ...) or a
 * reply of the wrong shape. Never "this session does not exist": the handler turns it into a failed
 * session_start() and one line in the PHP error log. The message names Redis key names, never values,
 * session IDs or passwords.
 */
final class StorageException extends \RuntimeException
{
}
