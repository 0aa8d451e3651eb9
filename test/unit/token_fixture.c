/* token_fixture.c -- see token_fixture.h. */
#include "token_fixture.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

const char *tok_fixture_path(const struct tok_fixture *f, const char *name)
{
	static char bufs[8][512];
	static unsigned next;
	char *b = bufs[next++ % 8];

	snprintf(b, sizeof bufs[0], "%s/%s", f->dir, name);
	return b;
}

long tok_fixture_read(const struct tok_fixture *f, const char *name, void *buf, size_t cap)
{
	FILE *fp = fopen(tok_fixture_path(f, name), "rb");
	size_t n;

	if (fp == NULL)
		return -1;
	n = fread(buf, 1, cap, fp);
	fclose(fp);
	return (long)n;
}

static int fix_write(const struct tok_fixture *f, const char *name, const void *p, size_t n)
{
	FILE *fp = fopen(tok_fixture_path(f, name), "wb");
	int ok = fp && fwrite(p, 1, n, fp) == n;

	if (fp && fclose(fp) != 0)
		ok = 0;
	return ok ? 0 : -1;
}

static int fix_pem(const struct tok_fixture *f, EVP_PKEY *k, const char *priv, const char *pub,
		   const char *der)
{
	FILE *fp;
	int ok = 1;

	if (priv) {
		fp = fopen(tok_fixture_path(f, priv), "wb");
		ok = fp && PEM_write_PrivateKey(fp, k, NULL, NULL, 0, NULL, NULL) == 1;
		if (fp)
			fclose(fp);
	}
	if (ok && pub) {
		fp = fopen(tok_fixture_path(f, pub), "wb");
		ok = fp && PEM_write_PUBKEY(fp, k) == 1;
		if (fp)
			fclose(fp);
	}
	if (ok && der) {
		unsigned char *d = NULL;
		int n = i2d_PUBKEY(k, &d);

		ok = n > 0 && fix_write(f, der, d, (size_t)n) == 0;
		OPENSSL_free(d);
	}
	return ok ? 0 : -1;
}

static int fix_secret(const struct tok_fixture *f, const char *name, char out[65])
{
	unsigned char raw[48];
	char line[70];

	if (RAND_bytes(raw, sizeof raw) != 1)
		return -1;
	EVP_EncodeBlock((unsigned char *)out, raw, sizeof raw); /* 64 chars + NUL */
	snprintf(line, sizeof line, "%s\n", out);
	return fix_write(f, name, line, strlen(line));
}

int tok_fixture_make(struct tok_fixture *f)
{
	EVP_PKEY *ed = NULL, *ed2 = NULL, *ec = NULL;
	int rc = -1;

	snprintf(f->dir, sizeof f->dir, "%s/relay-tok-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(f->dir) == NULL) {
		perror("mkdtemp");
		return -1;
	}
	ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	ed2 = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (ed && ed2 && ec && fix_pem(f, ed, "ed.pem", "ed.pub", "ed.der") == 0 &&
	    fix_pem(f, ed2, "ed2.pem", "ed2.pub", NULL) == 0 &&
	    fix_pem(f, ec, NULL, "ec.pub", NULL) == 0 &&
	    fix_secret(f, "hs.key", f->hs_secret) == 0 &&
	    fix_secret(f, "hs2.key", f->hs2_secret) == 0 &&
	    fix_write(f, "short.key", "0123456789012345678901234567890\n", 32) == 0)
		rc = 0;
	else
		fprintf(stderr, "token fixture: cannot create key files in %s\n", f->dir);
	EVP_PKEY_free(ed);
	EVP_PKEY_free(ed2);
	EVP_PKEY_free(ec);
	return rc;
}

void tok_fixture_remove(struct tok_fixture *f)
{
	DIR *d = opendir(f->dir);
	struct dirent *e;

	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.')
			unlink(tok_fixture_path(f, e->d_name));
	if (d)
		closedir(d);
	rmdir(f->dir);
}
