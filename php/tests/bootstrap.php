<?php

/**
 * PHPUnit bootstrap: the handler's autoloader, and the shared test vectors of docs/.
 */

declare(strict_types=1);

require dirname(__DIR__) . '/autoload.php';
require __DIR__ . '/Support/RedisTestCase.php';

/**
 * A JSON file of the repository's docs/ folder (the vectors shared with the TypeScript side).
 *
 * @return array<string, mixed>
 */
function sessionMigrateVectors(string $name): array
{
    return json_decode((string) file_get_contents(dirname(__DIR__, 2) . '/docs/' . $name), true, 512, JSON_THROW_ON_ERROR);
}
