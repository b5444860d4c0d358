<?php

declare(strict_types=1);

namespace SessionMigrate\Tests;

use PHPUnit\Framework\TestCase;
use SessionMigrate\KeyRingLoader;

/**
 * KeyRingLoader: one source from the environment, file checks, and the stat-based reuse of a ring
 * whose file did not change.
 */
final class KeyRingLoaderTest extends TestCase
{
    private string $dir;

    /** @var array<string, mixed> */
    private array $rings;

    protected function setUp(): void
    {
        $this->dir = sys_get_temp_dir() . '/sm-loader-' . bin2hex(random_bytes(4));
        mkdir($this->dir, 0700);
        $this->rings = sessionMigrateVectors('keyring-vectors.json')['valid'];
        KeyRingLoader::clearCache();
        foreach (['SESSION_MIGRATE_KEY', 'SESSION_MIGRATE_KEY_FILE', 'SESSION_MIGRATE_KEY_RING_FILE', 'SESSION_MIGRATE_KEY_PROVIDER'] as $name) {
            putenv($name);
        }
    }

    protected function tearDown(): void
    {
        foreach ((array) glob($this->dir . '/*') as $file) {
            unlink((string) $file);
        }
        rmdir($this->dir);
        KeyRingLoader::clearCache();
        putenv('SESSION_MIGRATE_KEY_FILE');
        putenv('SESSION_MIGRATE_KEY');
    }

    private function file(string $name, string $text, int $mode = 0600): string
    {
        $path = $this->dir . '/' . $name;
        file_put_contents($path, $text);
        chmod($path, $mode);

        return $path;
    }

    public function testAnUnchangedFileIsNotParsedAgainAChangedOneIs(): void
    {
        $path = $this->file('ring', $this->rings[1]['text']);
        $first = KeyRingLoader::fromFile($path);
        self::assertSame($first, KeyRingLoader::fromFile($path), 'same stat signature: the same ring');
        // a rotation rewrites the file (another inode, size or mtime): read again
        file_put_contents($path . '.new', $this->rings[0]['text']);
        chmod($path . '.new', 0600);
        rename($path . '.new', $path);
        $second = KeyRingLoader::fromFile($path);
        self::assertNotSame($first, $second);
        self::assertSame($this->rings[0]['current_key_id'], bin2hex($second->currentKeyId()));
        // a wiped ring is never handed out again
        $second->wipe();
        self::assertFalse(KeyRingLoader::fromFile($path)->isWiped());
    }

    public function testReadsAWholeFileBeyondOneStreamChunkAndRefusesOneOver64KiB(): void
    {
        // 8 KiB is PHP's stream chunk: a ring with long comments must still be read to its end
        $padding = str_repeat('# ' . str_repeat('c', 77) . "\n", 200);
        $path = $this->file('long', $padding . $this->rings[1]['text']);
        self::assertGreaterThan(8192, filesize($path));
        self::assertSame($this->rings[1]['current_key_id'], bin2hex(KeyRingLoader::fromFile($path)->currentKeyId()));
        $big = $this->file('big', str_repeat('#', 65537) . "\n" . $this->rings[0]['text']);
        try {
            KeyRingLoader::fromFile($big);
            self::fail('accepted a file of more than 64 KiB');
        } catch (\RuntimeException $e) {
            self::assertStringContainsString('too large to be a key file', $e->getMessage());
        }
    }

    public function testRefusesAFileOthersCanReadAMissingFileAndADirectory(): void
    {
        $open = $this->file('open', $this->rings[0]['text'], 0604);
        foreach ([[$open, 'accessible to others (mode 0604)'], [$this->dir . '/none', 'not a regular file or does not exist'], [$this->dir, 'not a regular file']] as [$path, $message]) {
            try {
                KeyRingLoader::fromFile($path);
                self::fail('accepted ' . $path);
            } catch (\RuntimeException $e) {
                self::assertStringContainsString($message, $e->getMessage());
            }
        }
    }

    /**
     * A FIFO at the key path: fopen() of a FIFO blocks until a writer opens it, which under php-fpm
     * would hold every worker. Refused before it is opened. SIGALRM (without SA_RESTART) ends a
     * blocked open() with EINTR, so the test fails instead of hanging should the check be missing.
     */
    public function testRefusesAFifoWithoutBlocking(): void
    {
        if (!function_exists('posix_mkfifo') || !function_exists('pcntl_alarm')) {
            self::markTestSkipped('needs ext-posix and ext-pcntl');
        }
        $fifo = $this->dir . '/fifo';
        self::assertTrue(posix_mkfifo($fifo, 0600));
        $blocked = false;
        pcntl_async_signals(true);
        pcntl_signal(SIGALRM, static function () use (&$blocked): void {
            $blocked = true;
        }, false);
        pcntl_alarm(2);
        try {
            KeyRingLoader::fromFile($fifo);
            self::fail('accepted a FIFO');
        } catch (\RuntimeException $e) {
            self::assertStringContainsString('not a regular file', $e->getMessage());
        } finally {
            pcntl_alarm(0);
            pcntl_signal(SIGALRM, SIG_DFL);
        }
        self::assertFalse($blocked, 'fromFile() blocked in open() of a FIFO');
    }

    public function testExactlyOneSourceFromTheEnvironment(): void
    {
        putenv('SESSION_MIGRATE_KEY_FILE=' . $this->file('k', $this->rings[0]['text']));
        self::assertSame($this->rings[0]['lookup_id'], KeyRingLoader::fromEnvironment()->lookupId());
        putenv('SESSION_MIGRATE_KEY=' . $this->rings[0]['text']);
        try {
            KeyRingLoader::fromEnvironment();
            self::fail('two sources accepted');
        } catch (\RuntimeException $e) {
            self::assertSame('session-migrate: SESSION_MIGRATE_KEY_FILE and SESSION_MIGRATE_KEY are all set; set only one', $e->getMessage());
        }
    }
}
