/* tls_client.c -- the harness's TLS: a test certificate made with the
 * openssl command on first use, and an OpenSSL client for struct
 * rl_test_client (client.c calls in here for connect, read, write).
 * Threading: the certificate and the client context are made once per
 * process (pthread_once); each struct rl_test_tls serialises its own SSL
 * calls, since one other thread may send while the owner receives. */
#include "harness.h"
#include "tls_client.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

struct rl_test_tls {
	SSL *ssl;
	pthread_mutex_t lock;
};

/* ---- certificates ---------------------------------------------------------- */

static pthread_once_t tls_files_once = PTHREAD_ONCE_INIT;
static char tls_dir[256], tls_cert[300], tls_key[300];
static int tls_files_rc;

static void tls_files_remove(void)
{
	unlink(tls_cert);
	unlink(tls_key);
	rmdir(tls_dir);
}

int rl_test_tls_make_cert(const char *cert, const char *key, const char *cn, const char *serial)
{
	char subj[128], ser[64];
	snprintf(subj, sizeof(subj), "/CN=%s", cn);
	snprintf(ser, sizeof(ser), "0x%s", serial);
	const char *argv[] = {"openssl",
			      "req",
			      "-x509",
			      "-newkey",
			      "ec",
			      "-pkeyopt",
			      "ec_paramgen_curve:P-256",
			      "-nodes",
			      "-days",
			      "2",
			      "-subj",
			      subj,
			      "-addext",
			      "subjectAltName=IP:127.0.0.1,DNS:localhost",
			      "-set_serial",
			      ser,
			      "-keyout",
			      key,
			      "-out",
			      cert,
			      NULL};
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int st = 0;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	int rc = posix_spawnp(&pid, "openssl", &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0)
		return rl_test_set_err("spawn openssl: %s", strerror(rc)), -rc;
	while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return rl_test_set_err("openssl req failed (status %d)", st), -EIO;
	return 0;
}

static void tls_files_make(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(tls_dir, sizeof(tls_dir), "%s/relay-test-tls-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(tls_dir)) {
		tls_files_rc = rl_test_set_err("mkdtemp %s: %s", tls_dir, strerror(errno));
		return;
	}
	snprintf(tls_cert, sizeof(tls_cert), "%s/cert.pem", tls_dir);
	snprintf(tls_key, sizeof(tls_key), "%s/key.pem", tls_dir);
	atexit(tls_files_remove);
	tls_files_rc = rl_test_tls_make_cert(tls_cert, tls_key, "relay-test", "7e57");
}

int rl_test_tls_files(const char **cert, const char **key)
{
	pthread_once(&tls_files_once, tls_files_make);
	if (tls_files_rc)
		return tls_files_rc;
	*cert = tls_cert;
	*key = tls_key;
	return 0;
}

bool rl_test_tls(void)
{
	const char *t = getenv("RELAY_TEST_TRANSPORT");
	return t && strcmp(t, "tls") == 0;
}

const char *const *rl_test_tls_server_args(void)
{
	static const char *args[7];
	const char *cert, *key;
	if (rl_test_tls_files(&cert, &key))
		return NULL;
	args[0] = "--tls-port";
	args[1] = "0";
	args[2] = "--tls-cert";
	args[3] = cert;
	args[4] = "--tls-key";
	args[5] = key;
	args[6] = NULL;
	return args;
}

/* ---- the client --------------------------------------------------------------- */

static pthread_once_t tls_ctx_once = PTHREAD_ONCE_INIT;
static SSL_CTX *tls_ctx;

static void tls_ctx_make(void)
{
	/* A server that closes under a pending write must not kill the test. */
	signal(SIGPIPE, SIG_IGN);
	tls_ctx = SSL_CTX_new(TLS_client_method());
	if (!tls_ctx)
		return;
	SSL_CTX_set_min_proto_version(tls_ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_mode(tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE);
	SSL_CTX_set_options(tls_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
}

static const char *tls_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	return r ? r : "no OpenSSL error";
}

struct rl_test_tls *rl_test_tls_open(int fd, int timeout_ms)
{
	pthread_once(&tls_ctx_once, tls_ctx_make);
	if (!tls_ctx)
		return rl_test_set_err("SSL_CTX_new failed"), NULL;
	struct rl_test_tls *t = calloc(1, sizeof(*t));
	if (!t || !(t->ssl = SSL_new(tls_ctx)) || SSL_set_fd(t->ssl, fd) != 1) {
		rl_test_tls_free(t);
		return rl_test_set_err("SSL_new failed"), NULL;
	}
	pthread_mutex_init(&t->lock, NULL);
	SSL_set_connect_state(t->ssl);
	int64_t deadline = rl_test_now_ms() + timeout_ms;
	for (;;) {
		ERR_clear_error();
		int r = SSL_do_handshake(t->ssl);
		if (r == 1)
			return t;
		int e = SSL_get_error(t->ssl, r);
		int64_t left = deadline - rl_test_now_ms();
		if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) || left <= 0) {
			int sys = errno;
			rl_test_set_err("TLS handshake: %s",
					left <= 0		     ? "timed out"
					: e == SSL_ERROR_ZERO_RETURN ? "connection closed by peer"
					: e == SSL_ERROR_SYSCALL && sys ? strerror(sys)
					: e == SSL_ERROR_SYSCALL ? "connection closed by peer"
								 : tls_reason());
			ERR_clear_error();
			rl_test_tls_free(t);
			return NULL;
		}
		struct pollfd p = {.fd = fd, .events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT};
		poll(&p, 1, (int)left);
	}
}

void rl_test_tls_free(struct rl_test_tls *t)
{
	if (!t)
		return;
	SSL_free(t->ssl);
	free(t);
}

/* Maps a failed SSL call to errno and -1 (or 0 for a clean EOF on read). */
static ssize_t tls_result(struct rl_test_tls *t, int r, int sys, bool reading)
{
	int e = SSL_get_error(t->ssl, r);
	ERR_clear_error();
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		errno = EAGAIN;
	else if (e == SSL_ERROR_ZERO_RETURN && reading)
		return 0;
	else if (e == SSL_ERROR_SYSCALL && sys)
		errno = sys;
	else
		errno = reading ? ECONNRESET : EPIPE;
	return -1;
}

ssize_t rl_test_tls_read(struct rl_test_tls *t, void *buf, size_t n)
{
	size_t got = 0;
	pthread_mutex_lock(&t->lock);
	/* Until OpenSSL wants the socket: then the socket's poll is exact. */
	while (got < n) {
		size_t k;
		ERR_clear_error();
		int r = SSL_read_ex(t->ssl, (char *)buf + got, n - got, &k);
		int sys = errno;
		if (r == 1) {
			got += k;
			continue;
		}
		ssize_t rc = tls_result(t, r, sys, true);
		pthread_mutex_unlock(&t->lock);
		return got ? (ssize_t)got : rc;
	}
	pthread_mutex_unlock(&t->lock);
	return (ssize_t)got;
}

ssize_t rl_test_tls_write(struct rl_test_tls *t, const void *buf, size_t n)
{
	size_t w;
	pthread_mutex_lock(&t->lock);
	ERR_clear_error();
	int r = SSL_write_ex(t->ssl, buf, n, &w);
	int sys = errno;
	ssize_t rc = r == 1 ? (ssize_t)w : tls_result(t, r, sys, false);
	pthread_mutex_unlock(&t->lock);
	return rc;
}

bool rl_test_tls_pending(struct rl_test_tls *t)
{
	pthread_mutex_lock(&t->lock);
	/* Decrypted bytes only: rl_test_tls_read stops at WANT_READ, so raw
	 * bytes left behind are a partial record that needs the socket. */
	bool p = SSL_pending(t->ssl) > 0;
	pthread_mutex_unlock(&t->lock);
	return p;
}

int rl_test_tls_peer(struct rl_test_tls *t, char *serial, size_t scap, char *subject, size_t subcap)
{
	X509 *x = SSL_get1_peer_certificate(t->ssl);
	if (!x)
		return rl_test_set_err("no peer certificate"), -ENOENT;
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;
	snprintf(serial, scap, "%s", hex ? hex : "?");
	X509_NAME_oneline(X509_get_subject_name(x), subject, (int)subcap);
	OPENSSL_free(hex);
	BN_free(bn);
	X509_free(x);
	return 0;
}
