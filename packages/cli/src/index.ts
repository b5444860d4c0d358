/**
 * session-migrate as a library: the public API of the `session-migrate` npm package (`import ... from
 * 'session-migrate'`). The `session-migrate` CLI is built on these same functions: every value it
 * takes from the packages is exported here (test/package-api.test.ts checks that).
 *
 * The use cases, one per command: each does what the command does and returns a typed report,
 * printing nothing (the CLI's command modules, packages/cli/src/commands/*.ts, only parse, call one
 * and print). Options given explicitly win over a plan's (resolvePlanDefaults).
 *
 * ```ts
 * import { createPlan, applyPlan, verifyMigration, purge } from 'session-migrate';
 *
 * const key = { kind: 'file', path: '/etc/session-migrate/master.key' } as const;
 * const plan = await createPlan({ source: 'files:/var/lib/php/sessions', target: 'rediss://10.0.0.5:6379/0', key,
 *   prefix: 'smsess:', out: 'session-migrate.plan.json', gcMaxlifetime: 1440, serializeHandler: 'php',
 *   maxSessionBytes: 8 << 20, artifactsDir: 'session-migrate-artifacts' });
 * const applied = await applyPlan({ plan: 'session-migrate.plan.json', dryRun: false });   // applied.ok
 * const verified = await verifyMigration({ plan: 'session-migrate.plan.json' });           // verified.report.ok
 * const purged = await purge({ plan: 'session-migrate.plan.json', dryRun: true, allowPartial: false });
 * ```
 *
 * The same flow from the parts the use cases are built on:
 *
 * ```ts
 * import {
 *   EnvelopeCodec, loadKeyRing, wipeKeyRing, openSource, RedisConnection, specFromUrl,
 *   summarizeSource, applySessions, verifyTarget, PLAN_FORMAT, PLAN_VERSION, type Plan,
 * } from 'session-migrate';
 *
 * const ring = await loadKeyRing({ kind: 'file', path: '/etc/session-migrate/master.key' });
 * const codec = await EnvelopeCodec.fromRing(ring);              // wipe() it when done
 * const source = openSource('files:/var/lib/php/sessions');      // or openAnySource('redis://...')
 * // rediss://, redis+sentinel://h:p/MASTER; TLS files as the 2nd argument; password: SESSION_MIGRATE_REDIS_PASSWORD
 * const client = await RedisConnection.open(specFromUrl('redis://10.0.0.5:6379/0', {}, 'target'), { write: true });
 * const php = { gcMaxlifetime: 1440, serializeHandler: 'php' } as const;
 * const summary = await summarizeSource(source, php);            // plan: what would move
 * const plan: Plan = { format: PLAN_FORMAT, version: PLAN_VERSION, ..., summary };  // see Plan
 * const applied = await applySessions({ plan, source, codec, target: client, dryRun: false, workers: 2,
 *   masterKeys: [ring.current, ...ring.previous], lookupKey: ring.lookupKey });
 * const report = await verifyTarget({ client, codec, prefix: plan.target.prefix, source, ...php });
 * client.close(); codec.wipe(); wipeKeyRing(ring); await source.close();
 * ```
 *
 * Warnings: each use case gives every warning or note line the CLI prints (`warning: ...`, `note:
 * ...`; a password in a URL, a connection's notes, apply's shard not compared with the plan, verify's
 * memory warnings, ...) to its `onWarning` option; without one, to `process.emitWarning(line, { type:
 * 'SessionMigrateWarning' })` (warnToProcess, WARNING_TYPE), Node's channel for library warnings:
 * printed on stderr by Node unless the program listens to `process.on('warning')` or runs with
 * `--no-warnings`. A RedisConnection opened directly keeps them in its `warnings` instead.
 *
 * Errors meant for an operator are `UserFacingError` (one printable line, `exitCode` 2); nothing
 * here prints or logs session contents, key material or passwords. The codemods load their parsers
 * (php-parser, the TypeScript compiler through ts-morph) only when called, so importing this module
 * stays cheap.
 */
import type { CodemodOptions, CodemodReport as PhpCodemodReportType } from '@session-migrate/codemod-php';
import type { CodemodReport as CdkCodemodReportType, RunOptions as CdkRunOptionsType } from '@session-migrate/codemod-cdk';

// ------------------------------------------------------------------ errors, output, version, files
export {
  UserFacingError,
  describeFsError,
  printable,
  terminalSafe,
  redactSessionPath,
  redactSessionFileNames,
  checkWholeNumber,
  StoppedRunError,
  type StoppedRunReport,
  withoutRunAgain,
  VERSION,
  assetPath,
  workerEntryUrl,
  PACKAGE_ASSETS,
  WORKER_ENTRIES,
  IS_BUILT_PACKAGE,
  ROOT_DIR,
  writeFileAtomic,
  isAtLeast,
  DEFAULT_GC_MAXLIFETIME,
  type AssetName,
  type WorkerName,
  type AtomicWriteOptions,
  type Finding,
  type Severity,
  checkAclUserName,
  firstFew,
  isPasswordVisibleWarning,
} from '@session-migrate/common';

// ------------------------------------------------------------------ keys and the envelope (docs/keys.md, docs/envelope.md)
export {
  EnvelopeCodec,
  DEFAULT_PREFIX,
  MAGIC,
  VERSION as ENVELOPE_VERSION,
  MASTER_KEY_BYTES,
  loadKeyRing,
  wipeKeyRing,
  describeKeyProvider,
  runKeyCommand,
  DEFAULT_KEY_COMMAND_TIMEOUT_SECONDS,
  MAX_KEY_TEXT_BYTES,
  generateKeyFile,
  readKeyFile,
  parseMasterKey,
  readSecretFile,
  writeSecretFileAtomic,
  refuseSymlinkTarget,
  KEYRING_HEADER,
  keyRingIds,
  keyIdOf,
  lookupIdOf,
  deriveLookupKey,
  deriveKeys,
  parseKeyText,
  formatKeyRing,
  looksLikeKeyRing,
  loadSodium,
  prefixProblem,
  sessionKeyName,
  tombstoneKeyName,
  lockKeyName,
  classifyKeyName,
  KEY_LAYOUT_VERSION,
  generateMasterKey,
  describeKeys,
  initKeyRing,
  addRingKey,
  rotateKeyRing,
  retireRingKey,
  type GenerateKeyReport,
  type KeyIdsReport,
  type KeyRingReport,
  type AddRingKeyReport,
  type KeyProvider,
  type KeyRing,
  type KeyRingIds,
  type OpenResult,
  type OpenFailure,
  type DerivedKeys,
  type KeyKind,
  type Sodium,
} from '@session-migrate/envelope';

// ------------------------------------------------------------------ sources: session files, plaintext phpredis keys
export {
  openSource,
  openAnySource,
  openFilesSource,
  openRedisSource,
  openRecordedRedisSource,
  parseRedisSourceSpec,
  checkSourceTargetPrefixes,
  sameRedisData,
  checkDistinctSources,
  sourceLabel,
  FilesSource,
  RedisSource,
  readSessionFile,
  phpAcceptsOwner,
  describeUid,
  resolvePhpUser,
  DEFAULT_MAX_SESSION_BYTES,
  SESSION_ID_PATTERN,
  PHPREDIS_DEFAULT_PREFIX,
  SOURCE_PASSWORD_ENV,
  type Source,
  type SessionSource,
  type SourceItem,
  type SourceSession,
  type SkippedEntry,
  type SkipReason,
  type SessionCandidate,
  type SourceDescription,
  type FilesSourceDescription,
  type RedisSourceDescription,
  type FilesSourceOptions,
  type ParsedRedisSource,
  type OpenRedisSourceOptions,
} from '@session-migrate/sources';

// ------------------------------------------------------------------ Redis: the one connection layer (docs/redis.md)
export {
  RedisConnection,
  parseRedisUrl,
  formatHostPort,
  redactUrl,
  credentialsFor,
  specFromUrl,
  specFromRecorded,
  normalizeTlsFiles,
  loadTlsOptions,
  tlsFilesEmpty,
  tlsOptionName,
  describeTlsError,
  classifyRedisError,
  describeClassified,
  redactedMessage,
  scanPatternForPrefix,
  keyNameForDisplay,
  parseInfo,
  readMemory,
  memoryWarnings,
  MEMORY_HEADROOM,
  aclRuleFor,
  handlerAclRule,
  ACL_COMMANDS,
  SENTINEL_ACL,
  PASSWORD_ENV,
  SENTINEL_PASSWORD_ENV,
  SCHEMES,
  type RedisSpec,
  type OpenOptions,
  type ConnectionDescription,
  type GroupedItem,
  type Reply,
  type RedisAddress,
  type RedisCredentials,
  type RedisRole,
  type Topology,
  type HostPort,
  type TlsFiles,
  type ClassifiedError,
  type ClassifyContext,
  type NodeMemory,
  type AclCommand,
  type RecordedRedis,
} from '@session-migrate/redis';

// ------------------------------------------------------------------ target: the guarded write, WAIT and read-back
export {
  writeBatchGuarded,
  readBackPresence,
  GUARDED_WRITE_LUA,
  tombstoneKeyFor,
  TOMBSTONE_INFIX,
  type GuardedWriteRequest,
  type GuardedWriteOutcome,
  type WriteOutcome,
  type Presence,
} from '@session-migrate/target';

// ------------------------------------------------------------------ plan, apply, rotate, purge, rollback
export {
  summarizeSource,
  writePlanFile,
  readPlanFile,
  PLAN_FORMAT,
  PLAN_VERSION,
  DEFAULT_PLAN_FILE,
  DEFAULT_ARTIFACTS_DIR,
  applySessions,
  detectDrift,
  DEFAULT_RETRY,
  remainingTtlSeconds,
  artifactsForPlan,
  applyArtifacts,
  describeArtifactResults,
  describeChoices,
  describeHandlerUser,
  describeGcMaxlifetimeFrom,
  type GcMaxlifetimeFrom,
  describePhpIniRules,
  type PhpIniRules,
  handlerUserFor,
  type HandlerUser,
  readGenerateChoices,
  GENERATE_CHOICES_FILE,
  redisForArtifacts,
  expectedMemoryBytes,
  PresenceLedger,
  rotateTarget,
  purgeSessions,
  rollbackToFiles,
  rollbackToFilesMany,
  rollbackRemoveKeys,
  resolveDuplicates,
  withoutSuperseded,
  sumSummaries,
  sumApplyReports,
  type Plan,
  type PlanSource,
  type DuplicatesReport,
  type DuplicateResolution,
  type RollbackTarget,
  type RollbackManyReport,
  type PlanKey,
  type PlanTarget,
  type PlanMemory,
  type ConfirmOptions,
  type SourceSummary,
  type SummaryOptions,
  type ApplySessionsOptions,
  type ApplySessionsReport,
  type SessionCounts,
  type KeyProblem,
  type RetryPolicy,
  type Drift,
  type CurrentState,
  type ArtifactResult,
  type ArtifactOverrides,
  type RotateOptions,
  type RotateReport,
  type PurgeOptions,
  type PurgeReport,
  type RollbackToFilesOptions,
  type RollbackToFilesReport,
  type RemoveKeysReport,
  sourceFailureNotDone,
} from '@session-migrate/migrate';

// ------------------------------------------------------------------ the use cases (one per command; reports, no printing)
export {
  createPlan,
  applyPlan,
  purge,
  rollback,
  rotate,
  generatePhp,
  resolvePlanDefaults,
  ttlPolicy,
  sumPurgeReports,
  checkPrefix,
  checkGcMaxlifetime,
  checkTargetGivenNow,
  redisFailure,
  planKeyFor,
  providerFromPlan,
  codecFromProvider,
  openTarget,
  openSources,
  openPlanSources,
  closeSources,
  checkSourcesAgainstTarget,
  readThroughSource,
  sourceRowLabel,
  sourceList,
  DEFAULT_WAIT_TIMEOUT_MS,
  DEFAULT_ROTATE_SCAN_COUNT,
  WARNING_TO_FILES,
  WARNING_REMOVE_KEYS,
  WARNING_TYPE,
  warnToProcess,
  type CreatePlanOptions,
  type ApplyPlanOptions,
  type ApplyPlanReport,
  type ApplyResult,
  type ApplySourceResult,
  type PurgeUseCaseOptions,
  type PurgeUseCaseReport,
  type PurgeResult,
  type RollbackOptions,
  type RollbackReport,
  type RotateUseCaseOptions,
  type RotateUseCaseReport,
  type GeneratePhpOptions,
  type GeneratePhpReport,
  type PlanDefaultsInput,
  type ResolvedPlanDefaults,
  type OpenSourcesOptions,
  type OnWarning,
} from '@session-migrate/migrate';
export { verifyMigration, type VerifyMigrationOptions, type VerifyMigrationReport } from '@session-migrate/verify';

// ------------------------------------------------------------------ verify
export {
  verifyTarget,
  classifyKey,
  scanKeys,
  redactKeyName,
  KEY_CLASSES,
  PHPREDIS_PREFIXES,
  type VerifyOptions,
  type VerifyReport,
  type VerifyFailure,
  type VerifyFailureReason,
  type SourceCheck,
  type SourceCheckReport,
  type PlaintextCheck,
  type PlaintextReport,
  type CompareCounts,
  type PresenceCounts,
  type KeyClass,
  type KeyValue,
  type KeyVerdict,
} from '@session-migrate/verify';

// ------------------------------------------------------------------ audit of the PHP session configuration (docs/audit-rules.md)
export {
  runAudit,
  probePhp,
  phpDefaults,
  localExtensionProbe,
  auditHost,
  auditIniFile,
  loadPhpParser,
  defaultEngine,
  collectScript,
  parseCollected,
  MAX_COLLECTED_BYTES,
  RootFs,
  CollectedFs,
  renderTable,
  renderJson,
  renderSarif,
  renderFleet,
  fleetJson,
  redactSecrets,
  RULES,
  SEVERITIES,
  severityRank,
  type AuditOptions,
  type AuditReport,
  type PhpProbe,
  type ExtensionProbe,
  type HostAuditOptions,
  type HostReport,
  type AuditedConfig,
  type CollectedHost,
  type Finding as AuditFinding,
  type Severity as AuditSeverity,
  type Rule as AuditRule,
} from '@session-migrate/audit';

// ------------------------------------------------------------------ generate: the PHP handler and the Redis infrastructure
export {
  renderArtifacts,
  writeArtifacts,
  loadTemplates,
  loadPhpSources,
  TEMPLATES_DIR,
  PHP_SOURCES_DIR,
  DEFAULT_FILE_NAMES,
  DEFAULT_NAMESPACE,
  DEFAULT_LOCKING,
  AUTOLOAD_FILE,
  SOURCE_DIR,
  HANDLER_FILE,
  GenerateOptionsError,
  type Artifact,
  type ArtifactFileNames,
  type GenerateOptions,
  type RedisTargetOptions,
  type RedisTlsOptions,
  type RedisNode,
  type LockingOptions,
  type ReadThroughOptions,
  type Templates,
  type PhpSource,
  type WriteResult,
} from '@session-migrate/generate';
export {
  renderIac,
  writeIac,
  isValidIacName,
  IAC_FORMATS,
  DEFAULT_IAC_NAME,
  IAC_TEMPLATES_DIR,
  ForeignFileError,
  type IacFormat,
  type IacOptions,
  type IacWriteResult,
} from '@session-migrate/generate/iac';

// ------------------------------------------------------------------ PHP formats: sessions and ini files
export {
  decodeSession,
  classifySession,
  loadableSessionFormat,
  sniffFormat,
  toValueModel,
  SERIALIZE_HANDLERS,
  type SerializeHandler,
  type SessionEntries,
  type DecodeResult,
  type SessionClassification,
  type PhpValue,
} from '@session-migrate/php-session';
export {
  parseIni,
  loadConfiguration,
  iniGetValues,
  parseFilesSavePath,
  parseRedisSavePath,
  redactRedisSavePath,
  type Configuration,
  type FilesSavePath,
  type RedisSavePath,
} from '@session-migrate/php-ini';

// ------------------------------------------------------------------ codemods (parsers loaded on first call)
export { DEFAULT_AUTH_SECRET_NAME, isValidSecretName, isBlocking as isBlockingCdkFinding } from '@session-migrate/codemod-cdk/names';
/** The codemods' one outcome rule (exit 1 when a high or medium finding or a skipped file is left for a person) and its last line. */
export { codemodIncomplete, finishCodemod } from '@session-migrate/common';
export type {
  CodemodOptions as PhpCodemodOptions,
  CodemodReport as PhpCodemodReport,
  FileChange as PhpCodemodFileChange,
  Finding as PhpCodemodFinding,
  Severity as PhpCodemodSeverity,
  CodemodInputError as PhpCodemodInputError,
} from '@session-migrate/codemod-php';
export type {
  RunOptions as CdkCodemodOptions,
  CodemodReport as CdkCodemodReport,
  FileReport as CdkCodemodFileReport,
  Finding as CdkCodemodFinding,
  Change as CdkCodemodChange,
} from '@session-migrate/codemod-cdk';

/**
 * The PHP codemod (README "codemod php"): registers the generated handler's bootstrap in a PHP
 * application and removes code that would switch PHP back to files sessions, as a reviewed,
 * format-preserving change (`options.dryRun`: diff only). Loads php-parser on the first call.
 * @returns the report: changes with their unified diff, findings (id, severity, file, line), skipped files.
 * @throws PhpCodemodInputError (`name` 'CodemodInputError', `exitCode` 2) for a bad directory or option.
 */
export async function codemodPhp(options: CodemodOptions): Promise<PhpCodemodReportType> {
  const { runCodemod } = await import('@session-migrate/codemod-php');
  return runCodemod(options);
}

/**
 * The AWS CDK codemod (README "codemod cdk"): turns on encryption in transit and at rest and AUTH for
 * ElastiCache replication groups in a CDK app's TypeScript, and reports what it cannot decide. Loads
 * the TypeScript compiler (ts-morph) on the first call, which takes about a second.
 * @param dir the CDK app directory (node_modules, cdk.out and .git are skipped).
 * @throws UserFacingError for a bad directory or secret name.
 */
export async function codemodCdk(dir: string, options: CdkRunOptionsType = {}): Promise<CdkCodemodReportType> {
  const { runCdkCodemod } = await import('@session-migrate/codemod-cdk');
  return runCdkCodemod(dir, options);
}
