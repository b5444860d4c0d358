<?php

/**
 * Copied by session-migrate (`session-migrate generate php`, `apply`) from its php/ folder: do not edit
 * this copy; regenerate instead.
 *
 * session-migrate's PSR-4 autoloader: classes of this namespace are loaded from src/, one class per
 * file (PSR-4: https://www.php-fig.org/psr/psr-4/). The generated bootstrap requires it; a project
 * with Composer may map the namespace to src/ in its own composer.json instead.
 */

declare(strict_types=1);

namespace SessionMigrate;

spl_autoload_register(static function (string $class): void {
    $prefix = __NAMESPACE__ . '\\';
    if (strncmp($class, $prefix, strlen($prefix)) !== 0) {
        return;
    }
    $file = __DIR__ . '/src/' . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
    if (is_file($file)) {
        require $file;
    }
});
