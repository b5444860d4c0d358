<?php

/**
 * Test helper: two requests of one PHP worker against a Redis Cluster, as php-fpm runs them (one
 * process, so phpredis's persistent list, which holds its slot-map cache, outlives the first).
 *
 *   php cluster-worker.php AUTOLOAD SEEDS_JSON KEY READY GO
 *
 * Request 1: ConnectionFactory::connect() and one EVAL on KEY, then close. Creates READY, waits until
 * GO exists (the test fails the slot's master over meanwhile). Request 2: a new ConnectionFactory and
 * connection, one EVAL on KEY. Prints the two replies (or the exception) and "done".
 */

declare(strict_types=1);

[, $autoload, $seeds, $key, $ready, $go] = $argv;
require $autoload;

$config = ['topology' => 'cluster', 'seeds' => json_decode($seeds, true), 'persistent' => true];
$first = (new SessionMigrate\ConnectionFactory($config))->connect();
var_dump($first->eval('return 1', [$key], 1));
$first->close();
touch($ready);
for ($i = 0; $i < 6000 && !file_exists($go); $i++) {
    usleep(10000);
}
try {
    $second = (new SessionMigrate\ConnectionFactory($config))->connect();
    var_dump($second->eval('return 2', [$key], 1));
} catch (Throwable $e) {
    echo get_class($e), ': ', $e->getMessage(), "\n";
}
echo "done\n";
