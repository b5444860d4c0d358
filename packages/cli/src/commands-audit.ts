/**
 * `session-migrate audit`: calls the audit use case (runAudit, packages/audit/src/use-case.ts) and
 * prints its reports. Exit codes: 0 no finding at or above --fail-on, 1 at least one, 2 usage or bad
 * input (UserFacingError).
 */
import { UserFacingError } from '@session-migrate/common';
import {
  collectScript,
  fleetJson,
  renderFleet,
  renderJson,
  renderSarif,
  renderTable,
  runAudit,
  type Severity,
} from '@session-migrate/audit';
import type { Print } from './commands/context.ts';

import { FAIL_ON } from './commands/audit.ts';

export { FAIL_ON };
// The php probes moved to the audit package with the use case; re-exported for the tests that use them from here.
export { localExtensionProbe, phpDefaults, probePhp } from '@session-migrate/audit';

export interface AuditArgs {
  ini?: string;
  scanDir?: string;
  root?: string;
  docroot: string[];
  /** Application directories whose PHP code is read for run-time session settings. */
  app: string[];
  /** SERVER_NAME of the requests docroot variants stand for ([HOST=] sections). */
  host?: string;
  fromCollected: string[];
  /** Print the fleet summary (renderFleet) of the collected documents; needs them (commands/audit.ts). */
  fleet: boolean;
  json: boolean;
  sarif: boolean;
  failOn: (typeof FAIL_ON)[number];
  php: string;
  version: string;
}

/** Prints the collect script. */
export function auditCollectScript(print: Print): number {
  process.stdout.write(collectScript());
  void print;
  return 0;
}

/**
 * Runs an audit and prints it (table, JSON, SARIF or the fleet summary).
 * @returns 1 when a finding is at or above `failOn`, else 0.
 * @throws UserFacingError on conflicting options or unreadable input.
 */
export async function auditCommand(o: AuditArgs, print: Print): Promise<number> {
  const { json, sarif, version, failOn, fleet, ...options } = o;
  if (json && sarif) throw new UserFacingError('--json and --sarif exclude each other');
  const { reports, failed } = await runAudit({ ...options, failOn: failOn as Severity | 'none' });
  if (fleet) {
    print(json ? JSON.stringify(fleetJson(reports), null, 2) : renderFleet(reports).trimEnd());
  } else if (json) print(renderJson(reports));
  else if (sarif) print(renderSarif(reports, version));
  else print(renderTable(reports).trimEnd());
  return failed ? 1 : 0;
}
