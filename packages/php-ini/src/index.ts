/**
 * @session-migrate/php-ini: PHP-exact ini parsing, startup file loading, directive validation and
 * the per-request layers (FPM pools, [PATH=]/[HOST=], .user.ini). See packages/php-ini/README.md.
 *
 * Main entry points:
 * - parseIni(text, {file, mode, env, lookup}) -> {entries, errors}            (parser.ts)
 * - loadConfiguration({sapi, iniPath, noIni, scanDir, defines, env, root})  -> Configuration (loader.ts)
 * - iniGetValues(config, keys?) -> {name: string | false}                     (loader.ts)
 * - directiveInfo(name, ctx) / rejectReason(name, value)                       (directives.ts)
 * - createRootFs({root}) / IniFileSystem                                       (fs.ts)
 * - readSessionIni({iniFile, scanDir, fpmConf, fpmPool}) -> session.* values   (session-ini.ts)
 */
export * from './save-path.ts';
export * from './parser.ts';
export * from './constants.ts';
export * from './directives.ts';
export * from './fs.ts';
export * from './loader.ts';
export * from './layers.ts';
export * from './fpm.ts';
export * from './redis-save-path.ts';
export * from './session-ini.ts';
