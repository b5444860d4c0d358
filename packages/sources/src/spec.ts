import { UserFacingError } from '@session-migrate/common';
import { openFilesSource, type FilesSource, type FilesSourceOptions } from './files.ts';

/**
 * Opens a source from its command-line spec. Supported: `files:DIR` where DIR may be a save_path in
 * PHP's `N;MODE;/path` form (quote it in the shell).
 * @throws UserFacingError for an unknown scheme or an unusable directory.
 */
export function openSource(spec: string, options: FilesSourceOptions = {}): FilesSource {
  const colon = spec.indexOf(':');
  const scheme = colon < 0 ? '' : spec.slice(0, colon);
  const rest = spec.slice(colon + 1);
  if (scheme === 'files' && rest !== '') return openFilesSource(rest, options);
  throw new UserFacingError(`unsupported source "${spec}": expected files:DIR (for example files:/var/lib/php/sessions)`);
}
