// bench/native-bound.c: what apply's session copy costs when written in C, for `npm run bench:apply
// -- --native-bound` (docs/performance.md, "A native bound"). A measurement of the bound, not product
// code: it keeps apply's per-session work and Redis commands and drops everything else, so its rate
// is an upper bound for any implementation of apply on the same machine.
//
// Per session file (every `sess_*` entry of DIR, as apply's files source):
//   openat(dirfd, O_RDONLY|O_NOFOLLOW|O_NONBLOCK), fstat, pread(size + 1), fstat (the two must
//   agree: inode, size, mtime, ctime), a second pread for a file changed in the last 10 s, close:
//   the stable-read rule of packages/sources/src/files.ts, with openat (which Node lacks);
//   one pass over the bytes (a stand-in for the session format check, cheaper than the real one);
//   the key name: keyed BLAKE2b-256 of the session ID, as hex (crypto_generichash);
//   the envelope: XChaCha20-Poly1305 (crypto_aead_xchacha20poly1305_ietf_encrypt) with the key
//   name as associated data, nonces from one randombytes_buf of 4,096 at a time, the same size as
//   apply's envelopes;
//   EVALSHA of apply's guarded-write script (SHA given), 128 sessions a call, keys, tombstones,
//   values and TTLs laid out as packages/target/src/encode.ts does.
// A second thread per connection parses the replies (each session's reply must be 1: written). At
// the end, the read-back: EXISTS of up to 1,000 keys per command, the total checked.
// Not done (apply does them): plan checks, artifacts, WAIT, the real format check, retries.
//
// Build: gcc -O2 -o native-bound bench/native-bound.c -l:libsodium.so.23 -lpthread
//   (libsodium's shared library is enough: the few prototypes are declared below, from
//   https://doc.libsodium.org/, so no -dev package is needed.)
// Usage: native-bound DIR PORT SHA1 [THREADS [set-nx]]   (prints the number of sessions written; exit 1
//   when a session was not written or not found at the read-back, 2 on a system error)
// With `set-nx`, each session is one pipelined `SET key value PX ttl NX` instead of the script: the
// bound of a key layout whose tombstone lives in the session's own key (so that SET NX alone refuses a
// destroyed session), which is not the layout apply uses; the envelope and read-back are the same.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int sodium_init(void);
int crypto_generichash(unsigned char *out, size_t outlen, const unsigned char *in, unsigned long long inlen,
                       const unsigned char *key, size_t keylen);
int crypto_aead_xchacha20poly1305_ietf_encrypt(unsigned char *c, unsigned long long *clen_p, const unsigned char *m,
                                               unsigned long long mlen, const unsigned char *ad,
                                               unsigned long long adlen, const unsigned char *nsec,
                                               const unsigned char *npub, const unsigned char *k);
void randombytes_buf(void *buf, size_t size);

#define GROUP 128
#define MAXFILE 65536

static unsigned char master[32], aead_key[32], key_id[8];
static char **names;
static size_t nnames;
static const char *dir;
static const char *sha;
static int port;
static int set_nx;

static void die(const char *m) { fprintf(stderr, "native-bound: %s (%s)\n", m, strerror(errno)); exit(2); }

static int connect_redis(void) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) die("connect");
  int one = 1;
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return s;
}

static void write_all(int s, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(s, p, n);
    if (w < 0) { if (errno == EINTR) continue; die("write"); }
    p += w; n -= (size_t)w;
  }
}

// ---- RESP reply reader: counts top-level replies and integer-1 entries inside array replies.
typedef struct { int s; char *buf; size_t len, pos, cap; } Reader;
static int fill(Reader *r) {
  if (r->pos > 0 && r->pos == r->len) r->pos = r->len = 0;
  if (r->len == r->cap) {
    if (r->pos > 0) { memmove(r->buf, r->buf + r->pos, r->len - r->pos); r->len -= r->pos; r->pos = 0; }
    else { r->cap *= 2; r->buf = realloc(r->buf, r->cap); }
  }
  ssize_t n = read(r->s, r->buf + r->len, r->cap - r->len);
  if (n <= 0) die("read");
  r->len += (size_t)n;
  return 0;
}
static char *line(Reader *r, size_t *n) {
  for (;;) {
    char *e = memmem(r->buf + r->pos, r->len - r->pos, "\r\n", 2);
    if (e) { char *l = r->buf + r->pos; *n = (size_t)(e - l); r->pos = (size_t)(e - r->buf) + 2; return l; }
    fill(r);
  }
}
// Parses one reply; returns its integer value for ':' and counts ones in arrays.
static long long reply(Reader *r, long long *ones, int *err) {
  size_t n;
  char *l = line(r, &n);
  char t = l[0];
  long long v = strtoll(l + 1, NULL, 10);
  if (t == '-') { *err = 1; fprintf(stderr, "native-bound: error reply %.*s\n", (int)(n > 80 ? 80 : n), l); return 0; }
  if (t == ':') { if (v == 1 && ones) (*ones)++; return v; }
  if (t == '+') { if (ones && n == 3 && memcmp(l, "+OK", 3) == 0) (*ones)++; return 0; }
  if (t == '$') {
    if (v < 0) return 0;
    while (r->len - r->pos < (size_t)v + 2) fill(r);
    r->pos += (size_t)v + 2;
    return 0;
  }
  if (t == '*') { for (long long i = 0; i < v; i++) reply(r, ones, err); return v; }
  *err = 1;
  return 0;
}

typedef struct { int s; long long calls_expected; long long ones; int err; volatile long long calls_sent; volatile int done; } ReplyState;
static void *reply_thread(void *p) {
  ReplyState *st = p;
  Reader r = {.s = st->s, .cap = 1 << 20};
  r.buf = malloc(r.cap);
  long long got = 0;
  for (;;) {
    if (st->done && got >= st->calls_sent) break;
    if (got >= st->calls_sent) { struct timespec ts = {0, 20000}; nanosleep(&ts, NULL); continue; }
    reply(&r, &st->ones, &st->err);
    got++;
  }
  free(r.buf);
  return NULL;
}

// ---- per-session work
static const char HEX[] = "0123456789abcdef";
static int stable_read(int dfd, const char *name, unsigned char *buf, size_t *size, double now) {
  int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return -1;
  struct stat a, b;
  if (fstat(fd, &a) != 0 || !S_ISREG(a.st_mode) || a.st_size >= MAXFILE) { close(fd); return -1; }
  ssize_t got = pread(fd, buf, (size_t)a.st_size + 1, 0);
  if (got != a.st_size) { close(fd); return -1; }
  if (fstat(fd, &b) != 0 || a.st_ino != b.st_ino || a.st_size != b.st_size ||
      a.st_mtim.tv_sec != b.st_mtim.tv_sec || a.st_mtim.tv_nsec != b.st_mtim.tv_nsec ||
      a.st_ctim.tv_sec != b.st_ctim.tv_sec || a.st_ctim.tv_nsec != b.st_ctim.tv_nsec) { close(fd); return -1; }
  double changed = a.st_ctim.tv_sec + a.st_ctim.tv_nsec / 1e9;
  if (now - changed < 10.0) {
    static unsigned char again[MAXFILE];
    if (pread(fd, again, (size_t)a.st_size + 1, 0) != a.st_size || memcmp(again, buf, (size_t)got) != 0) { close(fd); return -1; }
  }
  close(fd);
  *size = (size_t)got;
  return 0;
}

static int classify(const unsigned char *p, size_t n) {
  // A stand-in for the byte-level validating pass: one loop over the bytes with a little state.
  int bars = 0, depth = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = p[i];
    if (c == '|') bars++;
    else if (c == '{') depth++;
    else if (c == '}') depth--;
  }
  return bars > 0 && depth == 0;
}

typedef struct {
  size_t from, to;
  long long sessions, calls;
  char *keys; // 80 bytes per session: the key name (NUL-terminated)
} Work;

static size_t put_bulk(char *o, const void *p, size_t n) {
  size_t k = (size_t)sprintf(o, "$%zu\r\n", n);
  memcpy(o + k, p, n);
  memcpy(o + k + n, "\r\n", 2);
  return k + n + 2;
}

static void *copy_thread(void *p) {
  Work *w = p;
  int dfd = open(dir, O_RDONLY | O_DIRECTORY);
  int s = connect_redis();
  ReplyState st = {.s = s};
  pthread_t rt;
  pthread_create(&rt, NULL, reply_thread, &st);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  double now = ts.tv_sec + ts.tv_nsec / 1e9;
  static __thread unsigned char data[MAXFILE];
  unsigned char *nonces = malloc(4096 * 24);
  size_t nonce_left = 0;
  // One call: keys, tombstones, values, TTLs, encoded at the end of the group.
  char (*key)[80] = malloc(GROUP * 80), (*tomb)[80] = malloc(GROUP * 80);
  unsigned char **val = malloc(GROUP * sizeof *val);
  size_t *vlen = malloc(GROUP * sizeof *vlen);
  for (int i = 0; i < GROUP; i++) val[i] = malloc(MAXFILE + 128);
  char *out = malloc(GROUP * (MAXFILE + 512));
  int g = 0;
  for (size_t i = w->from; i <= w->to; i++) {
    if (i < w->to) {
      size_t n;
      const char *name = names[i];
      if (stable_read(dfd, name, data, &n, now) != 0) continue;
      if (!classify(data, n)) continue;
      const char *id = name + 5;
      unsigned char digest[32];
      crypto_generichash(digest, 32, (const unsigned char *)id, strlen(id), master, 32);
      char hex[65];
      for (int k = 0; k < 32; k++) { hex[2 * k] = HEX[digest[k] >> 4]; hex[2 * k + 1] = HEX[digest[k] & 15]; }
      hex[64] = 0;
      int kl = sprintf(key[g], "smsess:{%s}", hex);
      sprintf(tomb[g], "smsess:{%s}:t", hex);
      memcpy(w->keys + (size_t)w->sessions * 80, key[g], (size_t)kl + 1);
      if (nonce_left == 0) { randombytes_buf(nonces, 4096 * 24); nonce_left = 4096; }
      const unsigned char *nonce = nonces + (--nonce_left) * 24;
      unsigned char *v = val[g];
      v[0] = 'S'; v[1] = 'M'; v[2] = 1;
      memcpy(v + 3, key_id, 8);
      memcpy(v + 11, nonce, 24);
      static __thread unsigned char plain[MAXFILE + 64];
      memset(plain, 0, 23);
      memcpy(plain + 23, data, n);
      unsigned long long cl;
      crypto_aead_xchacha20poly1305_ietf_encrypt(v + 35, &cl, plain, n + 23, (const unsigned char *)key[g], (unsigned long long)kl, NULL, nonce, aead_key);
      vlen[g] = 35 + cl;
      g++;
      w->sessions++;
    }
    if (set_nx && (g == GROUP || (i == w->to && g > 0))) {
      char *o = out;
      for (int k = 0; k < g; k++) {
        o += sprintf(o, "*6\r\n$3\r\nSET\r\n");
        o += put_bulk(o, key[k], strlen(key[k]));
        o += put_bulk(o, val[k], vlen[k]);
        o += put_bulk(o, "PX", 2);
        o += put_bulk(o, "86400000", 8);
        o += put_bulk(o, "NX", 2);
      }
      write_all(s, out, (size_t)(o - out));
      __atomic_add_fetch(&st.calls_sent, g, __ATOMIC_SEQ_CST);
      w->calls += g;
      g = 0;
    } else if (g == GROUP || (i == w->to && g > 0)) {
      char *o = out;
      o += sprintf(o, "*%d\r\n$7\r\nEVALSHA\r\n$40\r\n%s\r\n", 3 + 4 * g, sha);
      char nk[16];
      int nkl = sprintf(nk, "%d", 2 * g);
      o += put_bulk(o, nk, (size_t)nkl);
      for (int k = 0; k < g; k++) o += put_bulk(o, key[k], strlen(key[k]));
      for (int k = 0; k < g; k++) o += put_bulk(o, tomb[k], strlen(tomb[k]));
      for (int k = 0; k < g; k++) o += put_bulk(o, val[k], vlen[k]);
      for (int k = 0; k < g; k++) o += put_bulk(o, "86400000", 8);
      write_all(s, out, (size_t)(o - out));
      __atomic_add_fetch(&st.calls_sent, 1, __ATOMIC_SEQ_CST);
      w->calls++;
      g = 0;
    }
  }
  st.done = 1;
  pthread_join(rt, NULL);
  if (st.err || st.ones != w->sessions) { fprintf(stderr, "native-bound: %lld written of %lld\n", st.ones, w->sessions); exit(1); }
  close(s);
  close(dfd);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 4) { fprintf(stderr, "usage: native-bound DIR PORT SHA1 [THREADS]\n"); return 2; }
  dir = argv[1];
  if (sodium_init() < 0) die("sodium_init");
  DIR *d = opendir(dir);
  if (!d) die("opendir");
  size_t cap = 1024;
  names = malloc(cap * sizeof *names);
  for (struct dirent *e; (e = readdir(d));) {
    if (strncmp(e->d_name, "sess_", 5) != 0) continue;
    if (nnames == cap) names = realloc(names, (cap *= 2) * sizeof *names);
    names[nnames++] = strdup(e->d_name);
  }
  closedir(d);
  port = atoi(argv[2]);
  sha = argv[3];
  int threads = argc > 4 ? atoi(argv[4]) : 1;
  if (threads < 1 || threads > 64) { fprintf(stderr, "native-bound: THREADS from 1 to 64\n"); return 2; }
  set_nx = argc > 5 && strcmp(argv[5], "set-nx") == 0;
  randombytes_buf(master, 32);
  randombytes_buf(aead_key, 32);
  randombytes_buf(key_id, 8);
  Work *w = calloc((size_t)threads, sizeof *w);
  pthread_t *t = malloc((size_t)threads * sizeof *t);
  for (int k = 0; k < threads; k++) {
    w[k].from = nnames * (size_t)k / (size_t)threads;
    w[k].to = nnames * (size_t)(k + 1) / (size_t)threads;
    w[k].keys = malloc((w[k].to - w[k].from + 1) * 80);
    pthread_create(&t[k], NULL, copy_thread, &w[k]);
  }
  long long sessions = 0;
  for (int k = 0; k < threads; k++) { pthread_join(t[k], NULL); sessions += w[k].sessions; }
  // The read-back: EXISTS of up to 1,000 keys per command, pipelined, the sum checked.
  int s = connect_redis();
  Reader r = {.s = s, .cap = 1 << 16};
  r.buf = malloc(r.cap);
  char *out = malloc(1000 * 100 + 64);
  long long present = 0, cmds = 0;
  for (int k = 0; k < threads; k++) {
    for (long long i = 0; i < w[k].sessions; i += 1000) {
      long long m = w[k].sessions - i < 1000 ? w[k].sessions - i : 1000;
      char *o = out + sprintf(out, "*%lld\r\n$6\r\nEXISTS\r\n", m + 1);
      for (long long j = 0; j < m; j++) { const char *kk = w[k].keys + (size_t)(i + j) * 80; o += put_bulk(o, kk, strlen(kk)); }
      write_all(s, out, (size_t)(o - out));
      cmds++;
    }
  }
  int err = 0;
  for (long long c = 0; c < cmds; c++) present += reply(&r, NULL, &err);
  if (err || present != sessions) { fprintf(stderr, "native-bound: read-back found %lld of %lld\n", present, sessions); return 1; }
  printf("%lld\n", sessions);
  return 0;
}
