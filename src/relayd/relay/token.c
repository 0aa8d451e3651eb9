/* token.c -- key files, JWS compact verification pinned to the key's
 * algorithm, claims, and minting; see token.h for the rules.
 * Threading: loading and freeing belong to one thread; a loaded key set or
 * signer is only read afterwards, by any number of threads at once. Every
 * verify duplicates the HMAC template or makes its own EVP_MD_CTX, and
 * clears the calling thread's OpenSSL error queue on its failure paths. */
#include "relay/token.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>

#define TOK_HS256_SIG 32
#define TOK_EDDSA_SIG 64
#define TOK_SEG_MAX (RL_TOKEN_MAX_BYTES / 4 * 3) /* decoded bytes of any segment */

static const char tok_pem_public[] = "-----BEGIN PUBLIC KEY-----";
static const char tok_pem_private[] = "-----BEGIN PRIVATE KEY-----";
static const char tok_pem_any[] = "-----BEGIN ";

/* One key: a verifying key in a set, or a signing key. */
struct tok_key {
	enum rl_token_alg alg;
	size_t kid_len;
	char kid[RL_TOKEN_KID_MAX + 1];
	EVP_PKEY *pkey;	  /* EdDSA: the public (set) or private (signer) key */
	EVP_MAC_CTX *mac; /* HS256: HMAC-SHA256 keyed with the secret; a template
			     that every use duplicates, never updates */
};

struct rl_token_keys {
	size_t n;
	struct tok_key key[];
};

struct rl_token_signer {
	struct tok_key k;
};

/* ---- names ------------------------------------------------------------------ */

static const char *const tok_alg_names[RL_TOKEN_NALGS] = {
    [RL_TOKEN_HS256] = "HS256",
    [RL_TOKEN_EDDSA] = "EdDSA",
};

static const size_t tok_sig_len[RL_TOKEN_NALGS] = {
    [RL_TOKEN_HS256] = TOK_HS256_SIG,
    [RL_TOKEN_EDDSA] = TOK_EDDSA_SIG,
};

static const char *const tok_err_names[RL_TOKEN_NERRS] = {
    [RL_TOKEN_OK] = "ok",
    [RL_TOKEN_TOO_LONG] = "too_long",
    [RL_TOKEN_MALFORMED] = "malformed",
    [RL_TOKEN_BAD_HEADER] = "bad_header",
    [RL_TOKEN_BAD_ALG] = "bad_alg",
    [RL_TOKEN_NO_KID] = "no_kid",
    [RL_TOKEN_UNKNOWN_KID] = "unknown_kid",
    [RL_TOKEN_BAD_SIGNATURE] = "bad_signature",
    [RL_TOKEN_BAD_CLAIMS] = "bad_claims",
    [RL_TOKEN_BAD_EXP] = "bad_exp",
    [RL_TOKEN_EXPIRED] = "expired",
    [RL_TOKEN_BAD_NBF] = "bad_nbf",
    [RL_TOKEN_NOT_YET_VALID] = "not_yet_valid",
    [RL_TOKEN_BAD_AUDIENCE] = "bad_audience",
    [RL_TOKEN_BAD_SUB] = "bad_sub",
    [RL_TOKEN_BAD_ROOMS] = "bad_rooms",
    [RL_TOKEN_INTERNAL] = "internal",
};

const char *rl_token_alg_name(enum rl_token_alg a)
{
	return (unsigned)a < RL_TOKEN_NALGS ? tok_alg_names[a] : "unknown";
}

const char *rl_token_err_name(enum rl_token_err e)
{
	return (unsigned)e < RL_TOKEN_NERRS ? tok_err_names[e] : "unknown";
}

/* Writes the failure message and returns <code>. */
static enum rl_token_err tok_fail(char why[RL_TOKEN_WHY_MAX], enum rl_token_err code,
				  const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static enum rl_token_err tok_fail(char why[RL_TOKEN_WHY_MAX], enum rl_token_err code,
				  const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, RL_TOKEN_WHY_MAX, fmt, ap);
	va_end(ap);
	return code;
}

/* ---- base64url --------------------------------------------------------------- */

static const char tok_b64_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* 0-63 for the alphabet, 64 for every other byte (test_token.c checks every
 * entry against the alphabet). */
/* clang-format off */
static const uint8_t tok_b64_val[256] = {
#define X16 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64
	X16, X16,
	/* 0x20 */ 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 62, 64, 64,
	/* 0x30 */ 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 64, 64, 64, 64, 64, 64,
	/* 0x40 */ 64,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14,
	/* 0x50 */ 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 64, 64, 64, 64, 63,
	/* 0x60 */ 64, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
	/* 0x70 */ 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 64, 64, 64, 64, 64,
	X16, X16, X16, X16, X16, X16, X16, X16,
#undef X16
};
/* clang-format on */

size_t rl_b64url_len(size_t n)
{
	return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

void rl_b64url_encode(const void *in, size_t n, char *out)
{
	const uint8_t *p = in;
	size_t i = 0;

	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		*out++ = tok_b64_chars[v >> 18];
		*out++ = tok_b64_chars[(v >> 12) & 63];
		*out++ = tok_b64_chars[(v >> 6) & 63];
		*out++ = tok_b64_chars[v & 63];
	}
	if (n - i == 1) {
		*out++ = tok_b64_chars[p[i] >> 2];
		*out++ = tok_b64_chars[(p[i] & 3) << 4];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)p[i] << 8 | p[i + 1];
		*out++ = tok_b64_chars[v >> 10];
		*out++ = tok_b64_chars[(v >> 4) & 63];
		*out++ = tok_b64_chars[(v & 15) << 2];
	}
}

long rl_b64url_decode(const char *in, size_t n, uint8_t *out, size_t cap)
{
	const uint8_t *s = (const uint8_t *)in;
	size_t len = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t o = 0;

	if (n % 4 == 1 || len > cap)
		return -1;
	for (size_t i = 0; i < n; i++) {
		uint8_t v = tok_b64_val[s[i]];

		if (v == 64)
			return -1;
		acc = acc << 6 | v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0)
		return -1; /* non-canonical: unused trailing bits set */
	return (long)o;
}

/* ---- key files ------------------------------------------------------------------ */

static bool tok_starts(const uint8_t *p, size_t n, const char *lit)
{
	size_t l = strlen(lit);
	return n >= l && memcmp(p, lit, l) == 0;
}

/* Reads the whole file (at most RL_TOKEN_FILE_MAX bytes) into a malloc'd
 * buffer the caller wipes and frees. */
static int tok_read_file(const char *path, uint8_t **out, size_t *outn, char *err, size_t errlen)
{
	uint8_t *buf;
	size_t n = 0;
	ssize_t r;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int e;

	if (fd == -1) {
		e = errno;
		snprintf(err, errlen, "token key %s: %s", path, strerror(e));
		return -e;
	}
	buf = malloc(RL_TOKEN_FILE_MAX + 1);
	if (buf == NULL) {
		close(fd);
		snprintf(err, errlen, "token key %s: out of memory", path);
		return -ENOMEM;
	}
	while (n <= RL_TOKEN_FILE_MAX && (r = read(fd, buf + n, RL_TOKEN_FILE_MAX + 1 - n)) != 0) {
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			e = errno;
			close(fd);
			free(buf);
			snprintf(err, errlen, "token key %s: %s", path, strerror(e));
			return -e;
		}
		n += (size_t)r;
	}
	close(fd);
	if (n > RL_TOKEN_FILE_MAX) {
		OPENSSL_cleanse(buf, n);
		free(buf);
		snprintf(err, errlen, "token key %s: larger than %d bytes", path,
			 RL_TOKEN_FILE_MAX);
		return -EFBIG;
	}
	*out = buf;
	*outn = n;
	return 0;
}

static int tok_mac_new(const void *secret, size_t n, EVP_MAC_CTX **out)
{
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
	    OSSL_PARAM_construct_end(),
	};
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *c = mac ? EVP_MAC_CTX_new(mac) : NULL;

	EVP_MAC_free(mac); /* the context holds its own reference */
	if (c == NULL || EVP_MAC_init(c, secret, n, params) != 1) {
		EVP_MAC_CTX_free(c);
		ERR_clear_error();
		return -EIO;
	}
	*out = c;
	return 0;
}

/* The file's bytes as an HS256 secret (less one trailing newline). */
static int tok_key_secret(struct tok_key *k, const char *path, const uint8_t *buf, size_t n,
			  char *err, size_t errlen)
{
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (n < RL_TOKEN_SECRET_MIN) {
		snprintf(
		    err, errlen,
		    "token key %s: an HS256 secret must be at least %d bytes, this one has %zu",
		    path, RL_TOKEN_SECRET_MIN, n);
		return -EINVAL;
	}
	k->alg = RL_TOKEN_HS256;
	if (tok_mac_new(buf, n, &k->mac)) {
		snprintf(err, errlen, "token key %s: OpenSSL cannot set up HMAC-SHA256", path);
		return -EIO;
	}
	return 0;
}

static int tok_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf, (void)size, (void)rwflag, (void)u;
	return -1; /* never prompt on the terminal */
}

/* A PEM public (or, for a signer, private) key that must be Ed25519. */
static int tok_key_pem(struct tok_key *k, const char *path, const uint8_t *buf, size_t n,
		       bool private, char *err, size_t errlen)
{
	BIO *bio = BIO_new_mem_buf(buf, (int)n);
	EVP_PKEY *pk = NULL;

	if (bio)
		pk = private ? PEM_read_bio_PrivateKey(bio, NULL, tok_no_passphrase, NULL)
			     : PEM_read_bio_PUBKEY(bio, NULL, tok_no_passphrase, NULL);
	BIO_free(bio);
	ERR_clear_error();
	if (pk == NULL) {
		snprintf(err, errlen, "token key %s: not a valid PEM %s key", path,
			 private ? "private" : "public");
		return -EINVAL;
	}
	if (!EVP_PKEY_is_a(pk, "ED25519")) {
		snprintf(err, errlen, "token key %s: a %s key; only Ed25519 keys are supported",
			 path, EVP_PKEY_get0_type_name(pk) ? EVP_PKEY_get0_type_name(pk) : "?");
		EVP_PKEY_free(pk);
		return -EINVAL;
	}
	k->alg = RL_TOKEN_EDDSA;
	k->pkey = pk;
	return 0;
}

/* Loads the key file <path> into <k>: verifying keys (<signing> false) or a
 * signing key. */
static int tok_key_load(struct tok_key *k, const char *path, bool signing, char *err, size_t errlen)
{
	uint8_t *buf = NULL;
	size_t n = 0;
	int rc = tok_read_file(path, &buf, &n, err, errlen);

	if (rc)
		return rc;
	if (tok_starts(buf, n, signing ? tok_pem_private : tok_pem_public)) {
		rc = tok_key_pem(k, path, buf, n, signing, err, errlen);
	} else if (tok_starts(buf, n, tok_pem_any)) {
		snprintf(err, errlen,
			 signing
			     ? "token key %s: a PEM file that is not an Ed25519 private key "
			       "(\"-----BEGIN PRIVATE KEY-----\"); a public key cannot sign"
			     : "token key %s: a PEM file that is not a public key "
			       "(\"-----BEGIN PUBLIC KEY-----\"); refusing to use it as a secret",
			 path);
		rc = -EINVAL;
	} else {
		rc = tok_key_secret(k, path, buf, n, err, errlen);
	}
	OPENSSL_cleanse(buf, n);
	free(buf);
	return rc;
}

static void tok_key_free(struct tok_key *k)
{
	EVP_PKEY_free(k->pkey);
	EVP_MAC_CTX_free(k->mac); /* OpenSSL wipes the HMAC key */
	k->pkey = NULL;
	k->mac = NULL;
}

/* "[KID=]FILE": sets k->kid and *<path>. */
static int tok_spec(struct tok_key *k, const char *spec, const char **path, char *err,
		    size_t errlen)
{
	const char *eq = strchr(spec, '=');
	const char *kid, *slash;
	size_t kid_len;

	if (eq && eq > spec && memchr(spec, '/', (size_t)(eq - spec)) == NULL) {
		kid = spec;
		kid_len = (size_t)(eq - spec);
		*path = eq + 1;
	} else {
		*path = spec;
		slash = strrchr(spec, '/');
		kid = slash ? slash + 1 : spec;
		kid_len = strlen(kid);
	}
	if (**path == '\0') {
		snprintf(err, errlen, "token key '%s': no file named", spec);
		return -EINVAL;
	}
	for (size_t i = 0; i < kid_len; i++)
		if (kid[i] < 0x21 || kid[i] > 0x7e)
			kid_len = 0;
	if (kid_len == 0 || kid_len > RL_TOKEN_KID_MAX) {
		snprintf(err, errlen,
			 "token key %s: the key id must be 1-%d printable ASCII characters "
			 "(set one with KID=FILE)",
			 *path, RL_TOKEN_KID_MAX);
		return -EINVAL;
	}
	memcpy(k->kid, kid, kid_len);
	k->kid[kid_len] = '\0';
	k->kid_len = kid_len;
	return 0;
}

/* ---- key sets ------------------------------------------------------------------ */

int rl_token_keys_load(const char *const *specs, size_t n, struct rl_token_keys **out, char *err,
		       size_t errlen)
{
	struct rl_token_keys *ks;
	const char *path;
	int rc = 0;

	if (n == 0 || n > RL_TOKEN_MAX_KEYS) {
		snprintf(err, errlen, "token keys: between 1 and %d keys, not %zu",
			 RL_TOKEN_MAX_KEYS, n);
		return -EINVAL;
	}
	ks = calloc(1, sizeof *ks + n * sizeof ks->key[0]);
	if (ks == NULL) {
		snprintf(err, errlen, "token keys: out of memory");
		return -ENOMEM;
	}
	for (; ks->n < n && rc == 0; ks->n++) {
		struct tok_key *k = &ks->key[ks->n];

		rc = tok_spec(k, specs[ks->n], &path, err, errlen);
		for (size_t j = 0; rc == 0 && j < ks->n; j++) {
			if (strcmp(ks->key[j].kid, k->kid) == 0) {
				snprintf(err, errlen, "token key %s: key id '%s' is already taken",
					 path, k->kid);
				rc = -EINVAL;
			}
		}
		if (rc == 0)
			rc = tok_key_load(k, path, false, err, errlen);
	}
	if (rc) {
		rl_token_keys_free(ks);
		return rc;
	}
	*out = ks;
	return 0;
}

void rl_token_keys_free(struct rl_token_keys *k)
{
	if (k == NULL)
		return;
	for (size_t i = 0; i < k->n; i++)
		tok_key_free(&k->key[i]);
	free(k);
}

size_t rl_token_keys_count(const struct rl_token_keys *k)
{
	return k->n;
}

const char *rl_token_keys_kid(const struct rl_token_keys *k, size_t i)
{
	return k->key[i].kid;
}

enum rl_token_alg rl_token_keys_alg(const struct rl_token_keys *k, size_t i)
{
	return k->key[i].alg;
}

/* ---- signatures ---------------------------------------------------------------- */

static int tok_hmac(const struct tok_key *k, const void *msg, size_t n, uint8_t mac[TOK_HS256_SIG])
{
	EVP_MAC_CTX *c = EVP_MAC_CTX_dup(k->mac);
	size_t len = 0;
	int ok = c && EVP_MAC_update(c, msg, n) == 1 &&
		 EVP_MAC_final(c, mac, &len, TOK_HS256_SIG) == 1 && len == TOK_HS256_SIG;

	EVP_MAC_CTX_free(c);
	if (!ok)
		ERR_clear_error();
	return ok ? 0 : -EIO;
}

/* 0 when <sig> verifies, -EBADMSG when not, -EIO when OpenSSL failed. */
static int tok_sig_verify(const struct tok_key *k, const void *msg, size_t n, const uint8_t *sig)
{
	uint8_t mac[TOK_HS256_SIG];
	EVP_MD_CTX *c;
	int rc;

	if (k->alg == RL_TOKEN_HS256) {
		if (tok_hmac(k, msg, n, mac))
			return -EIO;
		rc = CRYPTO_memcmp(mac, sig, TOK_HS256_SIG) == 0 ? 0 : -EBADMSG;
		OPENSSL_cleanse(mac, sizeof mac);
		return rc;
	}
	c = EVP_MD_CTX_new();
	if (c == NULL || EVP_DigestVerifyInit(c, NULL, NULL, NULL, k->pkey) != 1)
		rc = -EIO;
	else /* a signature that cannot be valid is just a bad signature */
		rc = EVP_DigestVerify(c, sig, TOK_EDDSA_SIG, msg, n) == 1 ? 0 : -EBADMSG;
	EVP_MD_CTX_free(c);
	if (rc)
		ERR_clear_error();
	return rc;
}

static int tok_sign(const struct tok_key *k, const void *msg, size_t n, uint8_t *sig)
{
	size_t len = TOK_EDDSA_SIG;
	EVP_MD_CTX *c;
	int ok;

	if (k->alg == RL_TOKEN_HS256)
		return tok_hmac(k, msg, n, sig);
	c = EVP_MD_CTX_new();
	ok = c && EVP_DigestSignInit(c, NULL, NULL, NULL, k->pkey) == 1 &&
	     EVP_DigestSign(c, sig, &len, msg, n) == 1 && len == TOK_EDDSA_SIG;
	EVP_MD_CTX_free(c);
	if (!ok)
		ERR_clear_error();
	return ok ? 0 : -EIO;
}

/* ---- verification: segments and header -------------------------------------- */

struct tok_hdr {
	uint8_t alg[16];
	size_t alg_len; /* decoded; may exceed sizeof alg (then no alg matches) */
	bool has_kid;
	uint8_t kid[RL_TOKEN_KID_MAX];
	size_t kid_len; /* decoded; may exceed sizeof kid (then no key matches) */
};

static enum rl_token_err tok_split(const uint8_t *t, size_t n, struct relay_span seg[3],
				   char why[RL_TOKEN_WHY_MAX])
{
	static const char *const names[3] = {"header", "payload", "signature"};
	size_t start = 0, k = 0;

	if (n > RL_TOKEN_MAX_BYTES)
		return tok_fail(why, RL_TOKEN_TOO_LONG, "token is longer than %d bytes",
				RL_TOKEN_MAX_BYTES);
	for (size_t i = 0; i <= n; i++) {
		if (i < n && t[i] != '.')
			continue;
		if (k == 3)
			return tok_fail(why, RL_TOKEN_MALFORMED,
					"token is not three dot-separated segments");
		seg[k++] = (struct relay_span){t + start, i - start};
		start = i + 1;
	}
	if (k != 3)
		return tok_fail(why, RL_TOKEN_MALFORMED,
				"token is not three dot-separated segments");
	for (k = 0; k < 3; k++)
		if (seg[k].n == 0)
			return tok_fail(why, RL_TOKEN_MALFORMED, "token %s segment is empty",
					names[k]);
	return RL_TOKEN_OK;
}

static enum rl_token_err tok_header(struct relay_span seg, struct tok_hdr *h,
				    char why[RL_TOKEN_WHY_MAX])
{
	uint8_t buf[TOK_SEG_MAX];
	struct relay_json_field f[3] = {
	    {.key = "alg", .buf = h->alg, .cap = sizeof h->alg},
	    {.key = "kid", .buf = h->kid, .cap = sizeof h->kid},
	    {.key = "crit"},
	};
	struct relay_json_result res;
	long n = rl_b64url_decode((const char *)seg.p, seg.n, buf, sizeof buf);

	if (n < 0)
		return tok_fail(why, RL_TOKEN_MALFORMED, "token header is not base64url");
	if (relay_json_parse(buf, (size_t)n, f, 3, &res) != 0 || res.top != RELAY_JSON_OBJECT)
		return tok_fail(why, RL_TOKEN_BAD_HEADER, "token header is not a JSON object");
	if (f[0].kind == RELAY_JSON_NONE)
		return tok_fail(why, RL_TOKEN_BAD_HEADER, "token header has no alg");
	if (f[0].kind != RELAY_JSON_STRING)
		return tok_fail(why, RL_TOKEN_BAD_HEADER, "token header alg is not a string");
	if (f[1].kind != RELAY_JSON_NONE && f[1].kind != RELAY_JSON_STRING)
		return tok_fail(why, RL_TOKEN_BAD_HEADER, "token header kid is not a string");
	if (f[2].kind != RELAY_JSON_NONE)
		return tok_fail(why, RL_TOKEN_BAD_HEADER, "token header crit is not supported");
	h->alg_len = f[0].lone_surrogate ? SIZE_MAX : f[0].dec_len;
	h->has_kid = f[1].kind == RELAY_JSON_STRING;
	h->kid_len = f[1].lone_surrogate ? SIZE_MAX : f[1].dec_len;
	return RL_TOKEN_OK;
}

static bool tok_alg_is(const struct tok_hdr *h, const char *name)
{
	return h->alg_len == strlen(name) && memcmp(h->alg, name, h->alg_len) == 0;
}

static bool tok_alg_is_none(const struct tok_hdr *h)
{
	static const char none[] = "none";

	if (h->alg_len != 4)
		return false;
	for (size_t i = 0; i < 4; i++)
		if ((h->alg[i] | 0x20) != none[i])
			return false;
	return true;
}

static enum rl_token_err tok_pick_key(const struct rl_token_keys *ks, const struct tok_hdr *h,
				      const struct tok_key **out, size_t *idx,
				      char why[RL_TOKEN_WHY_MAX])
{
	if (ks->n == 1) {
		*out = &ks->key[0];
		*idx = 0;
		return RL_TOKEN_OK;
	}
	if (!h->has_kid)
		return tok_fail(why, RL_TOKEN_NO_KID,
				"token header has no kid (the server has several keys)");
	for (size_t i = 0; i < ks->n; i++) {
		if (ks->key[i].kid_len == h->kid_len &&
		    memcmp(ks->key[i].kid, h->kid, h->kid_len) == 0) {
			*out = &ks->key[i];
			*idx = i;
			return RL_TOKEN_OK;
		}
	}
	return tok_fail(why, RL_TOKEN_UNKNOWN_KID, "token kid names no key of this server");
}

enum rl_token_err rl_token_verify(const struct rl_token_keys *keys,
				  const struct rl_token_policy *pol, const uint8_t *tok, size_t n,
				  struct rl_token_claims *out, char why[RL_TOKEN_WHY_MAX])
{
	struct relay_span seg[3];
	struct tok_hdr h;
	const struct tok_key *k = NULL;
	uint8_t sig[TOK_EDDSA_SIG];
	uint8_t payload[TOK_SEG_MAX];
	enum rl_token_err e;
	size_t idx = 0;
	long sn, pn;
	int rc;

	out->perm = NULL;
	if ((e = tok_split(tok, n, seg, why)) || (e = tok_header(seg[0], &h, why)))
		return e;
	if (tok_alg_is_none(&h))
		return tok_fail(why, RL_TOKEN_BAD_ALG, "token alg none is never accepted");
	if ((e = tok_pick_key(keys, &h, &k, &idx, why)))
		return e;
	if (!tok_alg_is(&h, tok_alg_names[k->alg]))
		return tok_fail(why, RL_TOKEN_BAD_ALG, "token alg must be %s for this key",
				tok_alg_names[k->alg]);
	if (seg[2].n != rl_b64url_len(tok_sig_len[k->alg]))
		return tok_fail(why, RL_TOKEN_BAD_SIGNATURE,
				"token signature has the wrong length for %s",
				tok_alg_names[k->alg]);
	sn = rl_b64url_decode((const char *)seg[2].p, seg[2].n, sig, sizeof sig);
	if (sn < 0)
		return tok_fail(why, RL_TOKEN_MALFORMED, "token signature is not base64url");
	rc = tok_sig_verify(k, tok, (size_t)(seg[1].p + seg[1].n - tok), sig);
	if (rc == -EIO)
		return tok_fail(why, RL_TOKEN_INTERNAL, "token signature check failed (internal)");
	if (rc)
		return tok_fail(why, RL_TOKEN_BAD_SIGNATURE, "token signature does not verify");
	pn = rl_b64url_decode((const char *)seg[1].p, seg[1].n, payload, sizeof payload);
	if (pn < 0)
		return tok_fail(why, RL_TOKEN_MALFORMED, "token payload is not base64url");
	e = rl_token_claims_parse(payload, (size_t)pn, pol, out, why);
	out->key = idx;
	return e;
}

/* ---- verification: claims ----------------------------------------------------- */

#define TOK_MS_LIMIT 10000000000000000ll /* 1e13 s in ms: keeps ms arithmetic safe */

/* A validated JSON number of seconds to whole milliseconds, exactly
 * (truncated), without strtod's locale. -ERANGE when negative or >= 1e13 s. */
static int tok_seconds_ms(struct relay_span raw, int64_t *out)
{
	const uint8_t *s = raw.p, *end = raw.p + raw.n;
	uint64_t m = 0; /* value = m * 10^x */
	long x = 3;	/* seconds -> ms */
	long ev = 0;
	int nd = 0, esign = 1;
	bool neg = false;

	if (s < end && *s == '-')
		neg = true, s++;
	for (; s < end && *s >= '0' && *s <= '9'; s++) {
		if (nd < 19) {
			m = m * 10 + (uint64_t)(*s - '0');
			nd += m != 0;
		} else {
			x++;
		}
	}
	if (s < end && *s == '.')
		for (s++; s < end && *s >= '0' && *s <= '9'; s++)
			if (nd < 19) {
				m = m * 10 + (uint64_t)(*s - '0');
				nd += m != 0;
				x--;
			}
	if (s < end && (*s == 'e' || *s == 'E')) {
		s++;
		if (s < end && (*s == '+' || *s == '-'))
			esign = *s++ == '-' ? -1 : 1;
		for (; s < end && *s >= '0' && *s <= '9'; s++)
			if (ev < 100000)
				ev = ev * 10 + (*s - '0');
		x += esign * ev;
	}
	for (; x < 0 && m; x++)
		m /= 10;
	for (; x > 0 && m; x--) {
		if (m >= (uint64_t)TOK_MS_LIMIT / 10 + 1)
			return -ERANGE;
		m *= 10;
	}
	if (m >= (uint64_t)TOK_MS_LIMIT || (neg && m))
		return -ERANGE;
	*out = (int64_t)m;
	return 0;
}

static enum rl_token_err tok_claim_time(const struct relay_json_field *f, const char *name,
					enum rl_token_err bad, int64_t *ms,
					char why[RL_TOKEN_WHY_MAX])
{
	if (f->kind != RELAY_JSON_NUMBER)
		return tok_fail(why, bad, "token %s is not a number", name);
	if (tok_seconds_ms(f->raw, ms))
		return tok_fail(why, bad, "token %s is out of range", name);
	return RL_TOKEN_OK;
}

static enum rl_token_err tok_claim_exp(const struct relay_json_field *exp,
				       const struct relay_json_field *nbf,
				       const struct rl_token_policy *pol, int64_t *exp_ms,
				       char why[RL_TOKEN_WHY_MAX])
{
	enum rl_token_err e;
	int64_t nbf_ms;

	if (exp->kind == RELAY_JSON_NONE)
		return tok_fail(why, RL_TOKEN_BAD_EXP, "token has no exp");
	if ((e = tok_claim_time(exp, "exp", RL_TOKEN_BAD_EXP, exp_ms, why)))
		return e;
	if (pol->now_ms >= *exp_ms + pol->leeway_ms)
		return tok_fail(why, RL_TOKEN_EXPIRED, "token has expired");
	if (nbf->kind == RELAY_JSON_NONE)
		return RL_TOKEN_OK;
	if ((e = tok_claim_time(nbf, "nbf", RL_TOKEN_BAD_NBF, &nbf_ms, why)))
		return e;
	if (pol->now_ms < nbf_ms - pol->leeway_ms)
		return tok_fail(why, RL_TOKEN_NOT_YET_VALID, "token is not valid yet (nbf)");
	return RL_TOKEN_OK;
}

static bool tok_aud_is(struct relay_span str, const char *want)
{
	uint8_t buf[256];
	size_t wn = strlen(want);
	long n = relay_json_string_decode(str, buf, sizeof buf);

	return n >= 0 && (size_t)n == wn && wn <= sizeof buf && memcmp(buf, want, wn) == 0;
}

static enum rl_token_err tok_claim_aud(const struct relay_json_field *aud,
				       const struct rl_token_policy *pol,
				       char why[RL_TOKEN_WHY_MAX])
{
	struct rl_json_strs it;
	struct relay_span s;
	int rc;

	if (pol->audience == NULL)
		return RL_TOKEN_OK;
	if (aud->kind == RELAY_JSON_STRING && tok_aud_is(aud->raw, pol->audience))
		return RL_TOKEN_OK;
	if (aud->kind == RELAY_JSON_ARRAY) {
		rl_json_strs_init(&it, aud->raw);
		while ((rc = rl_json_strs_next(&it, &s)) == 1)
			if (tok_aud_is(s, pol->audience))
				return RL_TOKEN_OK;
		if (rc < 0)
			return tok_fail(why, RL_TOKEN_BAD_AUDIENCE,
					"token aud array holds a non-string");
	}
	if (aud->kind == RELAY_JSON_NONE)
		return tok_fail(why, RL_TOKEN_BAD_AUDIENCE,
				"token has no aud (this server requires an audience)");
	if (aud->kind != RELAY_JSON_STRING && aud->kind != RELAY_JSON_ARRAY)
		return tok_fail(why, RL_TOKEN_BAD_AUDIENCE,
				"token aud is not a string or an array");
	return tok_fail(why, RL_TOKEN_BAD_AUDIENCE, "token aud does not name this server");
}

static enum rl_token_err tok_claim_sub(const struct relay_json_field *sub,
				       struct rl_token_claims *out, char why[RL_TOKEN_WHY_MAX])
{
	if (sub->kind == RELAY_JSON_NONE)
		return tok_fail(why, RL_TOKEN_BAD_SUB, "token has no sub");
	if (sub->kind != RELAY_JSON_STRING)
		return tok_fail(why, RL_TOKEN_BAD_SUB, "token sub is not a string");
	if (sub->dec_len == 0)
		return tok_fail(why, RL_TOKEN_BAD_SUB, "token sub is empty");
	if (sub->dec_len > RELAY_USERID_MAX_BYTES)
		return tok_fail(why, RL_TOKEN_BAD_SUB, "token sub is longer than %d bytes",
				RELAY_USERID_MAX_BYTES);
	if (sub->lone_surrogate ||
	    relay_userid_check((const uint8_t *)out->sub, sub->dec_len) != RELAY_ERR_NONE)
		return tok_fail(why, RL_TOKEN_BAD_SUB,
				"token sub is not a valid userId (control character?)");
	out->sub[sub->dec_len] = '\0';
	out->sub_len = sub->dec_len;
	return RL_TOKEN_OK;
}

enum rl_token_err rl_token_claims_parse(const uint8_t *p, size_t n,
					const struct rl_token_policy *pol,
					struct rl_token_claims *out, char why[RL_TOKEN_WHY_MAX])
{
	enum { C_EXP = 0, C_NBF, C_AUD, C_SUB, C_ROOMS, C_N };
	struct relay_json_field f[C_N] = {
	    [C_EXP] = {.key = "exp"},
	    [C_NBF] = {.key = "nbf"},
	    [C_AUD] = {.key = "aud"},
	    [C_SUB] = {.key = "sub", .buf = (uint8_t *)out->sub, .cap = RELAY_USERID_MAX_BYTES},
	    [C_ROOMS] = {.key = "rooms"},
	};
	struct relay_json_result res;
	enum rl_token_err e;
	char pwhy[RL_TOKEN_WHY_MAX];
	int rc;

	out->perm = NULL;
	if (relay_json_parse(p, n, f, C_N, &res) != 0 || res.top != RELAY_JSON_OBJECT)
		return tok_fail(why, RL_TOKEN_BAD_CLAIMS, "token payload is not a JSON object");
	if ((e = tok_claim_exp(&f[C_EXP], &f[C_NBF], pol, &out->exp_ms, why)) ||
	    (e = tok_claim_aud(&f[C_AUD], pol, why)) || (e = tok_claim_sub(&f[C_SUB], out, why)))
		return e;
	if (f[C_ROOMS].kind == RELAY_JSON_NONE)
		return RL_TOKEN_OK;
	rc = rl_perm_compile(f[C_ROOMS].raw, &out->perm, pwhy, sizeof pwhy);
	if (rc == -ENOMEM)
		return tok_fail(why, RL_TOKEN_INTERNAL, "out of memory");
	if (rc)
		return tok_fail(why, RL_TOKEN_BAD_ROOMS, "token %s", pwhy);
	return RL_TOKEN_OK;
}

/* ---- minting ------------------------------------------------------------------ */

int rl_token_signer_load(const char *path, struct rl_token_signer **out, char *err, size_t errlen)
{
	struct rl_token_signer *s = calloc(1, sizeof *s);
	int rc;

	if (s == NULL) {
		snprintf(err, errlen, "token key %s: out of memory", path);
		return -ENOMEM;
	}
	rc = tok_key_load(&s->k, path, true, err, errlen);
	if (rc) {
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

int rl_token_signer_hs256(const void *secret, size_t n, struct rl_token_signer **out)
{
	struct rl_token_signer *s = calloc(1, sizeof *s);

	if (s == NULL || tok_mac_new(secret, n, &s->k.mac)) {
		free(s);
		return -ENOMEM;
	}
	s->k.alg = RL_TOKEN_HS256;
	*out = s;
	return 0;
}

enum rl_token_alg rl_token_signer_alg(const struct rl_token_signer *s)
{
	return s->k.alg;
}

void rl_token_signer_free(struct rl_token_signer *s)
{
	if (s == NULL)
		return;
	tok_key_free(&s->k);
	free(s);
}

long rl_token_sign(const struct rl_token_signer *s, const void *hdr, size_t hn, const void *payload,
		   size_t pn, char *out, size_t cap)
{
	size_t sl = tok_sig_len[s->k.alg];
	size_t a = rl_b64url_len(hn), b = rl_b64url_len(pn);
	size_t total = a + 1 + b + 1 + rl_b64url_len(sl);
	uint8_t sig[TOK_EDDSA_SIG];

	if (hn > cap || pn > cap || total >= cap)
		return -ENOSPC;
	rl_b64url_encode(hdr, hn, out);
	out[a] = '.';
	rl_b64url_encode(payload, pn, out + a + 1);
	out[a + 1 + b] = '.';
	if (tok_sign(&s->k, out, a + 1 + b, sig))
		return -EIO;
	rl_b64url_encode(sig, sl, out + a + 1 + b + 1);
	out[total] = '\0';
	return (long)total;
}
