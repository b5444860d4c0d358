/**
 * TLS settings of a Redis connection: a CA file (a private CA), a client certificate and its key
 * (mutual TLS), and the name to verify when connecting by IP address. Certificates are always
 * verified; there is no option to turn that off. Plans store the absolute paths, never the contents.
 *
 * Node's TLS options: https://nodejs.org/docs/latest-v20.x/api/tls.html#tlsconnectoptions-callback
 * (`ca` replaces the default trust store with the given CA; `servername` is the name checked against
 * the certificate and sent as SNI).
 */
import { readFileSync, statSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { resolve } from 'node:path';
import { createSecureContext, type ConnectionOptions, type PeerCertificate } from 'node:tls';
import { UserFacingError, describeFsError } from '@session-migrate/common';
import type { RedisRole } from './url.ts';

/** TLS files of a connection: absolute paths (as stored in a plan) and the name to verify. */
export interface TlsFiles {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  serverName?: string;
}

/** The CLI option that sets a TLS field, per role (`--tls-ca-file` / `--source-tls-ca-file`). */
export function tlsOptionName(field: keyof TlsFiles, role: RedisRole): string {
  const base = { caFile: 'tls-ca-file', certFile: 'tls-cert-file', keyFile: 'tls-key-file', serverName: 'tls-server-name' }[field];
  return `--${role === 'source' ? 'source-' : ''}${base}`;
}

/** True when no field is set. */
export function tlsFilesEmpty(t: TlsFiles | undefined): boolean {
  return t === undefined || (t.caFile === undefined && t.certFile === undefined && t.keyFile === undefined && t.serverName === undefined);
}

/**
 * Checks TLS settings given on the command line and makes the paths absolute.
 * @param tls whether the URL asks for TLS (`rediss://`); TLS options without it are a mistake
 * @throws UserFacingError (exit 2) for a client key without its certificate (or the reverse), a
 *   server name that is not a host name, or TLS options on a `redis://` URL.
 */
export function normalizeTlsFiles(t: TlsFiles, tls: boolean, role: RedisRole): TlsFiles | undefined {
  if (tlsFilesEmpty(t)) return undefined;
  if (!tls) {
    const given = (Object.keys(t) as Array<keyof TlsFiles>).filter((k) => t[k] !== undefined).map((k) => tlsOptionName(k, role));
    throw new UserFacingError(`${given.join(', ')} given, but the ${role} URL is not TLS: use rediss:// (or rediss+sentinel://)`);
  }
  if (t.keyFile !== undefined && t.certFile === undefined) {
    throw new UserFacingError(
      `${tlsOptionName('keyFile', role)} needs ${tlsOptionName('certFile', role)}: a client key goes with its certificate`,
    );
  }
  if (t.certFile !== undefined && t.keyFile === undefined) {
    throw new UserFacingError(
      `${tlsOptionName('certFile', role)} needs ${tlsOptionName('keyFile', role)}: a client certificate goes with its key`,
    );
  }
  for (const f of ['caFile', 'certFile', 'keyFile'] as const) {
    if (t[f] === '') throw new UserFacingError(`${tlsOptionName(f, role)} is empty`);
  }
  if (t.serverName !== undefined && !/^[A-Za-z0-9*]([A-Za-z0-9.*-]{0,252})$/.test(t.serverName)) {
    throw new UserFacingError(`${tlsOptionName('serverName', role)} "${t.serverName}" is not a host name`);
  }
  return {
    ...(t.caFile !== undefined ? { caFile: resolve(t.caFile) } : {}),
    ...(t.certFile !== undefined ? { certFile: resolve(t.certFile) } : {}),
    ...(t.keyFile !== undefined ? { keyFile: resolve(t.keyFile) } : {}),
    ...(t.serverName !== undefined ? { serverName: t.serverName } : {}),
  };
}

function readPem(path: string, option: string, kind: 'certificate' | 'key'): Buffer {
  let data: Buffer;
  try {
    if (!statSync(path).isFile()) throw new UserFacingError(`${option} ${path}: not a regular file`);
    data = readFileSync(path);
  } catch (err) {
    if (err instanceof UserFacingError) throw err;
    throw new UserFacingError(`${option} ${path}: ${describeFsError(err)}`);
  }
  const text = data.toString('latin1');
  const ok = kind === 'certificate' ? /-----BEGIN CERTIFICATE-----/.test(text) : /-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/.test(text);
  if (!ok)
    throw new UserFacingError(
      `${option} ${path} is not a PEM ${kind} (expected a -----BEGIN ${kind === 'certificate' ? 'CERTIFICATE' : 'PRIVATE KEY'}----- block)`,
    );
  return data;
}

/**
 * Reads the TLS files into Node TLS options (certificate verification always on).
 * @throws UserFacingError (exit 2) for a file that is missing or not PEM, or a certificate and key
 *   that do not belong together.
 */
export function loadTlsOptions(t: TlsFiles | undefined, role: RedisRole): ConnectionOptions {
  const options: ConnectionOptions = { rejectUnauthorized: true };
  if (t === undefined) return options;
  if (t.caFile !== undefined) {
    options.ca = readPem(t.caFile, tlsOptionName('caFile', role), 'certificate');
    try {
      createSecureContext({ ca: options.ca });
    } catch {
      throw new UserFacingError(`${tlsOptionName('caFile', role)} ${t.caFile} is not a valid PEM certificate`);
    }
  }
  if (t.certFile !== undefined && t.keyFile !== undefined) {
    options.cert = readPem(t.certFile, tlsOptionName('certFile', role), 'certificate');
    options.key = readPem(t.keyFile, tlsOptionName('keyFile', role), 'key');
    try {
      createSecureContext({ cert: options.cert, key: options.key });
    } catch (err) {
      const why = /mismatch/i.test((err as Error).message)
        ? 'the key does not belong to the certificate'
        : 'not a valid certificate and key';
      throw new UserFacingError(
        `${tlsOptionName('certFile', role)} ${t.certFile} and ${tlsOptionName('keyFile', role)} ${t.keyFile}: ${why}`,
      );
    }
  }
  if (t.serverName !== undefined) options.servername = t.serverName;
  return options;
}

/** Node's error codes of a certificate that failed verification (tls.TLSSocket#authorizationError). */
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
]);

/** Code of the error `speaksPlainRedis()` lets a TLS connection fail with. */
export const PLAINTEXT_SERVER = 'ERR_SESSION_MIGRATE_PLAINTEXT_SERVER';

/**
 * Whether host:port answers a plaintext `PING` as Redis does (`+PONG`, or an error reply such as
 * `-NOAUTH ...`): the port speaks plain RESP, not TLS. A TLS server answers no such thing (it reads
 * "PING" as a broken handshake), so this cannot mistake a slow TLS server for a plaintext one.
 * Never throws: a connection error, a timeout or any other answer is `false`.
 * @param timeoutMs how long to wait for the connection and the reply together
 */
export function speaksPlainRedis(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((done) => {
    let seen = '';
    const socket = netConnect({ host, port });
    const finish = (answer: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      done(answer);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: Buffer) => {
      seen += chunk.toString('latin1');
      if (seen.includes('\r\n') || seen.length > 512) finish(/^[+-][\x20-\x7e]*\r\n/.test(seen));
    });
    socket.on('error', () => finish(false));
    socket.on('close', () => finish(false));
  });
}

/** The names a certificate is issued for (its subjectAltName entries, else its CN), printable, at most 8. */
function certificateNames(cert: PeerCertificate | undefined): string | undefined {
  if (cert === undefined || cert === null) return undefined;
  const san = typeof cert.subjectaltname === 'string' ? cert.subjectaltname.split(/,\s*/).map((n) => n.replace(/^IP Address:/, 'IP:')) : [];
  const names = san.length > 0 ? san : typeof cert.subject?.CN === 'string' ? [`CN=${cert.subject.CN}`] : [];
  const shown = names.slice(0, 8).map((n) => n.replace(/[^\x21-\x7e]/g, '?').slice(0, 100));
  if (shown.length === 0) return undefined;
  return shown.join(', ') + (names.length > shown.length ? `, and ${names.length - shown.length} more` : '');
}

/**
 * A one-line explanation of a TLS failure, naming the option that fixes it; undefined when the error
 * is not about TLS. Of a certificate it names only the names it is issued for (subjectAltName or CN).
 * @param tls the TLS settings of the connection (to tell a `--tls-server-name` that was given)
 */
export function describeTlsError(err: NodeJS.ErrnoException, role: RedisRole, tls?: TlsFiles): string | undefined {
  const code = err.code ?? '';
  const msg = err.message ?? '';
  if (code === PLAINTEXT_SERVER) {
    return 'the server does not speak TLS on this port: it answered in plaintext Redis; use redis:// instead of rediss:// (redis+sentinel:// instead of rediss+sentinel://), or check the port';
  }
  if (UNTRUSTED.has(code)) {
    return `certificate problem: the server's certificate is not signed by a trusted CA (${code}); give its CA with ${tlsOptionName('caFile', role)} FILE`;
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    const names = certificateNames((err as { cert?: PeerCertificate }).cert);
    const issued = names !== undefined ? `; it is issued for ${names}` : '';
    if (tls?.serverName !== undefined) {
      return `certificate problem: the server's certificate does not match the name given with ${tlsOptionName('serverName', role)} (${tls.serverName})${issued} (${code}); give one of its names`;
    }
    return `certificate problem: the server's certificate is not valid for this host name or IP (${code})${issued}; connect by the name it was issued for, or give that name with ${tlsOptionName('serverName', role)} NAME`;
  }
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
    // OpenSSL checks every certificate of the chain against this host's clock (X509_V_ERR_CERT_HAS_EXPIRED,
    // X509_V_ERR_CERT_NOT_YET_VALID: https://docs.openssl.org/3.0/man1/openssl-verification-options/);
    // Node's error carries no certificate here, so the clock is what can be shown.
    const clock = `this host's clock says ${new Date().toISOString().replace(/\.\d{3}Z$/, 'Z')}`;
    return code === 'CERT_HAS_EXPIRED'
      ? `certificate problem: the server's certificate, or a CA certificate of its chain, has expired (${code}; ${clock}): renew it on the server, or set this host's clock right if it is wrong`
      : `certificate problem: the server's certificate, or a CA certificate of its chain, is not valid yet (${code}; ${clock}): set this host's clock right if it is wrong, or check the certificate's start date`;
  }
  if (/certificate required|alert number 116|CERTIFICATE_REQUIRED|peer did not return a certificate/i.test(msg + code)) {
    return `certificate problem: the server requires a client certificate; give ${tlsOptionName('certFile', role)} and ${tlsOptionName('keyFile', role)}`;
  }
  if (/alert certificate expired|alert number 45|SSLV3_ALERT_CERTIFICATE_EXPIRED/i.test(msg + code)) {
    // TLS alert 45 (RFC 5246 section 7.2.2, certificate_expired): the server checked our certificate's dates.
    const file = tls?.certFile !== undefined ? ` ${tls.certFile}` : '';
    return `certificate problem: the server refused the client certificate${file}: it has expired (SSL alert 45); give a valid one with ${tlsOptionName('certFile', role)}`;
  }
  if (/unknown ca|alert number 48|TLSV1_ALERT_UNKNOWN_CA|bad certificate|alert number 42/i.test(msg + code)) {
    return `certificate problem: the server refused the client certificate (${code !== '' ? code : 'unknown CA'}); give one signed by a CA the server trusts with ${tlsOptionName('certFile', role)}`;
  }
  if (/wrong version number|ERR_SSL_WRONG_VERSION_NUMBER|packet length too long/i.test(msg + code)) {
    return `the server does not speak TLS on this port (${code !== '' ? code : 'wrong version number'}); use redis:// instead of rediss:// (redis+sentinel:// instead of rediss+sentinel://)`;
  }
  return undefined;
}
