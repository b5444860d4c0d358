/**
 * The phpredis session save_path (shared/cases BUG-17; phpredis redis_session.c PS_OPEN_FUNC(redis)):
 * split on ',' first (each part one server), then each part is a URL whose query is form-decoded
 * ('+' = space, %XX, '&' separates). Only what the audit needs leaves this module: scheme, host, port,
 * TLS, whether auth is present, database, prefix. The password is never returned.
 */
import type { RedisSavePathView, RedisServer, ValueFinding } from './engine.ts';

export function parseRedisView(value: string): RedisSavePathView {
  const servers: RedisServer[] = [];
  const findings: ValueFinding[] = [];
  let previousHadQuery = false;
  for (const raw of value.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const hadQuery = previousHadQuery;
    previousHadQuery = raw.includes('?');
    const m = /^(?:(tcp|tls|unix|ssl|redis|rediss):\/\/)?([^?]*)(?:\?(.*))?$/i.exec(raw);
    if (m === null) continue;
    const scheme = (m[1] ?? (raw.startsWith('/') ? 'unix' : 'tcp')).toLowerCase();
    const hostPort = m[2] ?? '';
    const query = m[3] ?? '';
    // After a part with a query, a part without a scheme is almost always the rest of a value that
    // contained ',' (phpredis splits on ',' before anything else, BUG-17): PHP then fails to connect.
    if ((hadQuery && !/^[a-z]+:\/\//i.test(raw)) || (!/^[a-z]+:\/\//i.test(raw) && !raw.startsWith('/') && !/^[\w.-]+(:\d+)?(\?|$)/.test(raw))) {
      findings.push({ id: 'save-path-comma-splits-hosts', severity: 'error', message: `"${raw.includes('=') ? raw.replace(/=.*/, '=…') : '…'}" after a ',' is read as another server: a ',' inside a value must be written %2C` });
      continue;
    }
    const params = new Map<string, string>();
    for (const part of query.split('&').filter((p) => p !== '')) {
      const eq = part.indexOf('=');
      const k = decodeURIComponent((eq < 0 ? part : part.slice(0, eq)).replace(/\+/g, ' '));
      let v = '';
      try { v = decodeURIComponent((eq < 0 ? '' : part.slice(eq + 1)).replace(/\+/g, ' ')); } catch { v = ''; }
      params.set(k, v);
      if (!['weight', 'timeout', 'read_timeout', 'persistent', 'prefix', 'auth', 'auth[]', 'auth[user]', 'auth[pass]', 'database', 'retry_interval', 'stream[verify_peer]', 'stream[verify_peer_name]', 'stream[cafile]'].includes(k) && !k.startsWith('stream[')) {
        findings.push({ id: 'save-path-ampersand-splits-query', severity: 'error', message: `unknown parameter "${k}" in the Redis save_path: an '&' inside a value (e.g. the password) must be written %26` });
      }
    }
    const authRaw = /(?:^|&)auth(?:\[[^\]]*\])?=([^&]*)/.exec(query)?.[1] ?? '';
    if (authRaw.includes('+')) findings.push({ id: 'save-path-plus-is-space', severity: 'error', message: "a '+' in auth= is decoded as a space: write %2B" });
    let host = hostPort;
    let port: number | null = null;
    if (scheme !== 'unix') {
      const hp = /^\[?([^\]]*?)\]?(?::(\d+))?$/.exec(hostPort);
      host = hp?.[1] ?? hostPort;
      port = hp?.[2] !== undefined ? parseInt(hp[2], 10) : 6379;
    }
    const database = params.get('database');
    const prefix = params.get('prefix');
    servers.push({
      scheme, host, port, tls: scheme === 'tls' || scheme === 'ssl' || scheme === 'rediss',
      auth: [...params.keys()].some((k) => k.startsWith('auth') && params.get(k) !== ''),
      ...(database !== undefined && /^\d+$/.test(database) ? { database: parseInt(database, 10) } : {}),
      ...(prefix !== undefined ? { prefix } : {}),
    });
  }
  return { servers, findings };
}
