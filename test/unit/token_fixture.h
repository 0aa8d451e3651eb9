/* token_fixture.h -- key files for the token tests, generated at test time
 * with OpenSSL (no private key is ever committed), in a fresh temporary
 * directory:
 *   ed.pem  ed.pub  ed.der   an Ed25519 private key (PKCS#8 PEM), its public
 *                            key (PEM) and the public key as DER
 *   ed2.pem ed2.pub          a second Ed25519 pair
 *   ec.pub                   a P-256 public key (a type tokens refuse)
 *   hs.key  hs2.key          HS256 secrets: 64 base64 characters + "\n"
 *   short.key                a 31-byte secret (too short)
 * Threading: single-threaded tests; one fixture per test process.
 */
#ifndef RELAY_TEST_TOKEN_FIXTURE_H
#define RELAY_TEST_TOKEN_FIXTURE_H

#include <stddef.h>

struct tok_fixture {
	char dir[64];
	char hs_secret[65]; /* hs.key's secret (the file less its newline) */
	char hs2_secret[65];
};

/* Creates the directory and the files. 0, or -1 with a message on stderr. */
int tok_fixture_make(struct tok_fixture *f);
/* "<dir>/<name>" in one of 8 rotating static buffers. */
const char *tok_fixture_path(const struct tok_fixture *f, const char *name);
/* Reads a fixture file whole into <buf>/<cap>; returns its length or -1. */
long tok_fixture_read(const struct tok_fixture *f, const char *name, void *buf, size_t cap);
/* Removes the files and the directory. */
void tok_fixture_remove(struct tok_fixture *f);

#endif
