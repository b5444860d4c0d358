<?php

/**
 * CLI-loop profile of one PHP request's session work (bench/handler-cli.ts runs it): N "requests" in
 * one PHP process, each doing what a PHP-FPM request does for a returning user: build the save handler
 * (as the bootstrap does on the first session_start() of a request: key from the environment, Redis
 * connection, persistent by default), session_start() with the cookie's ID, change the session,
 * session_write_close(). Static state is reset between requests where PHP-FPM would reset it (the key
 * ring cache); persistent connections stay, as they do in a PHP-FPM worker.
 *
 *   php handler-loop.php VARIANT N PORT [ARTIFACTS_DIR]
 *
 * VARIANT: native (phpredis's `redis` handler, persistent), native-locking (the same with
 * redis.session.locking_enabled=1), generated (ARTIFACTS_DIR: autoload.php + src/, the bootstrap's
 * configuration below), generated-nopersist, generated-nolock, old (ARTIFACTS_DIR: the single-class
 * handler of before the split, built as its bootstrap did).
 * Prints one JSON line: {"variant", "n", "usPerRequest", "phases": {...µs per request}, "roundTrips"}.
 */

declare(strict_types=1);

[, $variant, $n, $port] = $argv;
$dir = $argv[4] ?? '';
$n = (int) $n;
$port = (int) $port;
ini_set('session.use_cookies', '0');
ini_set('session.use_strict_mode', '1');
ini_set('session.lazy_write', '1');
ini_set('session.cache_limiter', '');
ini_set('max_execution_time', '30');

$payload = [
    'user' => ['id' => 42, 'email' => 'user42@example.com', 'roles' => ['customer', 'newsletter']],
    'cart' => array_fill(0, 5, ['sku' => 'SKU-00042-1', 'qty' => 2, 'price' => 9.5]),
    'csrf' => str_repeat('ab', 32),
    'history' => array_fill(0, 4, '/catalog/category-7/product-294?ref=home'),
    'n' => 0,
];

$phases = ['build' => 0.0, 'start' => 0.0, 'close' => 0.0];
$makeHandler = null;
$roundTrips = null;
if (strncmp($variant, 'native', 6) === 0) {
    ini_set('session.save_handler', 'redis');
    ini_set('session.save_path', "tcp://127.0.0.1:$port?persistent=1");
    ini_set('redis.session.locking_enabled', $variant === 'native-locking' ? '1' : '0');
    ini_set('redis.session.lock_retries', '100');
    ini_set('redis.session.lock_wait_time', '20000');
} elseif (strncmp($variant, 'generated', 9) === 0) {
    require $dir . '/autoload.php';
    $config = [
        'redis' => ['host' => '127.0.0.1', 'port' => $port, 'persistent' => $variant !== 'generated-nopersist'],
        'prefix' => 'smsess:',
        'locking' => ['enabled' => $variant !== 'generated-nolock'],
    ];
    $makeHandler = static function () use ($config): SessionHandlerInterface {
        \SessionMigrate\KeyRingLoader::clearCache(); // PHP-FPM starts every request without it
        return new \SessionMigrate\LazySessionHandler(static function () use ($config) {
            return \SessionMigrate\Bootstrap::build($config);
        });
    };
} elseif ($variant === 'old') {
    require $dir . '/EncryptedRedisSessionHandler.php';
    // What the old bootstrap's $connect did on every request that started a session.
    $makeHandler = static function () use ($port): SessionHandlerInterface {
        $class = '\SessionMigrate\EncryptedRedisSessionHandler';
        $keyRing = $class::keyRingFromEnvironment();
        $redis = new Redis();
        $redis->connect('127.0.0.1', $port, 2.5);
        $redis->setOption(Redis::OPT_READ_TIMEOUT, 2.5);
        $redis->setOption(Redis::OPT_SERIALIZER, Redis::SERIALIZER_NONE);
        $handler = new $class($redis, $keyRing, 'smsess:');
        $class::wipeKeyRing($keyRing);

        return $handler;
    };
} else {
    fwrite(STDERR, "unknown variant $variant\n");
    exit(2);
}

/** One request. */
$request = static function (?string $id) use ($makeHandler, $payload, &$phases): string {
    $t0 = hrtime(true);
    if ($makeHandler !== null) {
        session_set_save_handler($makeHandler(), false);
    }
    $t1 = hrtime(true);
    if ($id !== null) {
        session_id($id);
    }
    if (!session_start()) {
        throw new RuntimeException('session_start failed');
    }
    $t2 = hrtime(true);
    if ($_SESSION === []) {
        $_SESSION = $payload;
    }
    $_SESSION['n']++;
    $id = session_id();
    session_write_close();
    $t3 = hrtime(true);
    $phases['build'] += ($t1 - $t0) / 1000;
    $phases['start'] += ($t2 - $t1) / 1000;
    $phases['close'] += ($t3 - $t2) / 1000;

    return $id;
};

$id = $request(null); // the session, and warm-up (classes compiled, scripts loaded, connection open)
for ($i = 0; $i < 50; $i++) {
    $request($id);
}
$phases = ['build' => 0.0, 'start' => 0.0, 'close' => 0.0];
$begin = hrtime(true);
for ($i = 0; $i < $n; $i++) {
    $request($id);
}
$total = (hrtime(true) - $begin) / 1000 / $n;
foreach ($phases as $k => $v) {
    $phases[$k] = round($v / $n, 1);
}
echo json_encode(['variant' => $variant, 'n' => $n, 'usPerRequest' => round($total, 1), 'phases' => $phases]), "\n";
