<?php

declare(strict_types=1);

namespace SessionMigrate\Tests;

use PHPUnit\Framework\TestCase;
use SessionMigrate\SessionLock;

/**
 * SessionLock: phpredis 6's defaults, a TTL in every case, bounded attempts, the options refused.
 */
final class SessionLockTest extends TestCase
{
    /** @var string|false */
    private $maxExecutionTime;

    protected function setUp(): void
    {
        $this->maxExecutionTime = ini_get('max_execution_time');
    }

    protected function tearDown(): void
    {
        ini_set('max_execution_time', (string) $this->maxExecutionTime);
    }

    public function testDefaultsAreOnWithPhpredis6Timing(): void
    {
        $lock = new SessionLock();
        self::assertTrue($lock->enabled());
        self::assertSame(100, $lock->retries());
        self::assertSame(SessionLock::FAIL, $lock->onFailure());
        self::assertMatchesRegularExpression('/^[0-9a-f]{32}$/', $lock->token());
        self::assertSame($lock->token(), $lock->token(), 'one token per request');
        self::assertNotSame($lock->token(), (new SessionLock())->token());
        self::assertSame('', SessionLock::disabled()->token());
    }

    public function testTheTtlIsMaxExecutionTimeOrTheBoundNeverZero(): void
    {
        $lock = new SessionLock(['ttlSeconds' => 9]);
        ini_set('max_execution_time', '45');
        self::assertSame(45000, $lock->ttlMillis());
        ini_set('max_execution_time', '0');
        self::assertSame(9000, $lock->ttlMillis());
    }

    public function testAcquireMakesOnePlusRetriesAttemptsAtMost(): void
    {
        $lock = new SessionLock(['retries' => 3, 'waitMicros' => 1]);
        $calls = 0;
        $result = $lock->acquire(static function () use (&$calls): array {
            $calls++;
            return ['locked' => false];
        });
        self::assertFalse($result['locked']);
        self::assertSame(4, $calls);
        $calls = 0;
        $lock->acquire(static function () use (&$calls): array {
            $calls++;
            return ['locked' => $calls === 2];
        });
        self::assertSame(2, $calls);
    }

    public function testSlowAttemptsNeverStretchTheWaitBeyondRetriesTimesWait(): void
    {
        // A loaded Redis: each attempt takes 30 ms. Counting attempts only (phpredis's lock_acquire),
        // 11 attempts and 10 pauses of 10 ms would take 430 ms; the budget after the first attempt is
        // 10 x (10 + 5) ms = 150 ms, then one last attempt.
        $lock = new SessionLock(['retries' => 10, 'waitMicros' => 10000]);
        $start = microtime(true);
        $result = $lock->acquire(static function (): array {
            usleep(30000);
            return ['locked' => false];
        });
        $elapsed = (microtime(true) - $start) * 1000;
        self::assertFalse($result['locked']);
        self::assertSame(150, $lock->maxWaitMillis());
        self::assertGreaterThanOrEqual(30 + 150, $elapsed, 'the whole budget is used');
        self::assertLessThan(30 + 150 + 30 + 80, $elapsed, 'at most the budget plus the last attempt (and slack)');
        self::assertLessThan(11, $lock->attempts());
        self::assertGreaterThanOrEqual(180, $lock->waitedMillis());
    }

    public function testStateFollowsHeldReadOnlyAndReset(): void
    {
        $lock = new SessionLock();
        $lock->markHeld('p:lock:{x}');
        self::assertSame('p:lock:{x}', $lock->held());
        $lock->markReadOnly();
        self::assertSame('', $lock->held());
        self::assertTrue($lock->isReadOnly());
        $lock->reset();
        self::assertFalse($lock->isReadOnly());
    }

    /** @return iterable<string, array{array<string, mixed>}> */
    public function badOptions(): iterable
    {
        yield 'unbounded retries (phpredis -1)' => [['retries' => -1]];
        yield 'no wait' => [['waitMicros' => 0]];
        yield 'lock without TTL' => [['ttlSeconds' => 0]];
        yield 'unknown failure mode' => [['onFailure' => 'ignore']];
    }

    /**
     * @dataProvider badOptions
     * @param array<string, mixed> $options
     */
    public function testRefusesOptionsOutOfRange(array $options): void
    {
        $this->expectException(\InvalidArgumentException::class);
        new SessionLock($options);
    }
}
