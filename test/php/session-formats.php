<?php
// Real PHP as the oracle for verify's plaintext-session class (test/verify-database.test.ts).
//
//   php -n -d extension=igbinary session-formats.php encode
//       prints one line per serialize_handler: "<handler> <hex of session_encode()>" of a session
//       holding a marker string, an int, a nested array and an object.
//   php -n -d extension=igbinary session-formats.php decode < lines of hex
//       prints one line per input line: the handlers (comma-separated, or "-") under which
//       session_decode() succeeds and leaves $_SESSION an array with at least one variable.
declare(strict_types=1);

ini_set('session.use_cookies', '0');
ini_set('session.cache_limiter', '');
ini_set('session.save_path', sys_get_temp_dir());

const HANDLERS = ['php', 'php_binary', 'php_serialize', 'igbinary'];

function startWith(string $handler): void
{
    ini_set('session.serialize_handler', $handler);
    session_id('fmt' . getmypid() . bin2hex(random_bytes(8)));
    session_start();
    $_SESSION = [];
}

function stop(): void
{
    if (session_status() === PHP_SESSION_ACTIVE) {
        session_abort();
    }
}

if (($argv[1] ?? '') === 'encode') {
    foreach (HANDLERS as $handler) {
        startWith($handler);
        $o = new stdClass();
        $o->name = 'MARKER-secret-' . $handler;
        $_SESSION = ['user' => 'MARKER-secret-' . $handler, 'n' => 42, 'cart' => ['a' => [1, 2.5, true]], 'o' => $o];
        // fwrite, not echo: output through PHP's output layer would send headers, after which
        // session settings can no longer change.
        fwrite(STDOUT, $handler . ' ' . bin2hex((string) session_encode()) . "\n");
        stop();
    }
    exit(0);
}

while (($line = fgets(STDIN)) !== false) {
    $hex = trim($line);
    $bytes = $hex === '' ? '' : hex2bin($hex);
    $ok = [];
    foreach (HANDLERS as $handler) {
        startWith($handler);
        try {
            $decoded = @session_decode($bytes === false ? '' : $bytes) && is_array($_SESSION) && $_SESSION !== [];
        } catch (Throwable $e) {
            $decoded = false;
        }
        if ($decoded) {
            $ok[] = $handler;
        }
        stop();
    }
    fwrite(STDOUT, ($ok === [] ? '-' : implode(',', $ok)) . "\n");
}
