import { UserFacingError } from './errors.ts';

/**
 * The one check of a whole-number option (`--retries`, `--master-wait-ms`, `--workers`, ...): `value`
 * must be an integer from `min` to `max`, both included. On the command line such a value is read in
 * plain decimal digits only: one written in hex, binary or with an exponent (`0x10`, `0b10`, `1e3`)
 * reaches this check as NaN (packages/cli/src/argv.ts notDecimal), so the message says "digits only".
 * @param option the option's name without dashes (`master-wait-ms`).
 * @param unit what the number counts when the message should say it (`milliseconds`, `seconds`, `bytes`).
 * @returns `value`.
 * @throws UserFacingError (exit 2): `--<option> must be a whole number[ of <unit>] from <min> to <max>, digits only`.
 */
export function checkWholeNumber(option: string, value: number, min: number, max: number, unit?: string): number {
  if (!Number.isInteger(value) || value < min || value > max)
    throw new UserFacingError(
      `--${option} must be a whole number${unit !== undefined ? ` of ${unit}` : ''} from ${min} to ${max}, digits only`,
    );
  return value;
}
