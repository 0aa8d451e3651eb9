/* fuzz_token.c -- libFuzzer target for the token verifier and the room
 * permission matcher (src/relayd/relay/token.c, perm.c). The first input byte
 * picks the path; the rest is the data:
 *
 *   0  the bytes as a compact token, verified against a two-key set (HS256
 *      "hs" with a fixed test secret, Ed25519 "ed" generated at start-up)
 *      and against the HS256 key alone: split, base64url, header, key choice,
 *      algorithm pinning, signature;
 *   1  "HEADER\0PAYLOAD": both are signed with the HS256 key (so the
 *      signature verifies) and the token verified: the claims path behind a
 *      valid signature, as an attacker holding a key would reach it;
 *   2  the bytes as a decoded payload, straight to rl_token_claims_parse,
 *      with and without an audience;
 *   3  the bytes as a `rooms` claim: rl_perm_compile, then rl_perm_allows
 *      compared with a naive matcher over the same patterns (differential);
 *   any  base64url: decoding is strict (canonical) and round-trips.
 *
 * Checked: no crash, no leak, no sanitizer report; an accepted token has a
 * valid userId and an exp in range; compiled permissions agree with the
 * naive matcher on every pattern, its extensions, prefixes and the input.
 *
 *   build-fuzz/test/fuzz/fuzz-token -max_total_time=20 CORPUS_DIR test/fuzz/corpus/token
 *
 * Threading: single-threaded (libFuzzer calls one input at a time).
 */
#include "fuzz.h"
#include "relay/token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

/* Not a real secret: the fuzz key, so that seeds signed with it verify. */
static const char fuzz_secret[] = "fuzz-secret-0123456789abcdef-0123456789abcdef";
#define FUZZ_NOW_MS 1700000000000ll

static struct rl_token_keys *keys2, *keys1;
static struct rl_token_signer *hs;

static void fuzz_write(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	FUZZ_CHECK(f && fwrite(p, 1, n, f) == n && fclose(f) == 0);
}

/* Key files in a temporary directory, loaded once, then removed. */
static void fuzz_keys(void)
{
	char dir[] = "/tmp/fuzz-token-XXXXXX", hs_path[64], ed_path[64], s1[80], s2[80];
	const char *specs[2] = {s1, s2};
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	char err[256];
	FILE *f;

	FUZZ_CHECK(mkdtemp(dir) && ed);
	snprintf(hs_path, sizeof hs_path, "%s/hs", dir);
	snprintf(ed_path, sizeof ed_path, "%s/ed", dir);
	fuzz_write(hs_path, fuzz_secret, sizeof fuzz_secret - 1);
	f = fopen(ed_path, "wb");
	FUZZ_CHECK(f && PEM_write_PUBKEY(f, ed) == 1 && fclose(f) == 0);
	EVP_PKEY_free(ed);
	snprintf(s1, sizeof s1, "hs=%s", hs_path);
	snprintf(s2, sizeof s2, "ed=%s", ed_path);
	FUZZ_CHECK(rl_token_keys_load(specs, 2, &keys2, err, sizeof err) == 0);
	FUZZ_CHECK(rl_token_keys_load(specs, 1, &keys1, err, sizeof err) == 0);
	FUZZ_CHECK(rl_token_signer_hs256(fuzz_secret, sizeof fuzz_secret - 1, &hs) == 0);
	unlink(hs_path);
	unlink(ed_path);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	fuzz_keys();
	return 0;
}

/* ---- verification ---------------------------------------------------------- */

static void fuzz_accepted(const struct rl_token_claims *c)
{
	FUZZ_CHECK(c->sub_len >= 1 && c->sub_len <= RELAY_USERID_MAX_BYTES);
	FUZZ_CHECK(strlen(c->sub) == c->sub_len);
	FUZZ_CHECK(relay_userid_check((const uint8_t *)c->sub, c->sub_len) == RELAY_ERR_NONE);
	FUZZ_CHECK(c->exp_ms >= 0 && c->exp_ms < 10000000000000000ll);
	FUZZ_CHECK(FUZZ_NOW_MS < c->exp_ms + RL_TOKEN_DEFAULT_LEEWAY_MS);
	/* any room name is a valid question */
	(void)rl_perm_allows(c->perm, RL_PERM_JOIN, (const uint8_t *)c->sub, c->sub_len);
	(void)rl_perm_allows(c->perm, RL_PERM_PUBLISH, (const uint8_t *)"lobby", 5);
}

static void fuzz_verify(const struct rl_token_keys *k, const char *aud, const uint8_t *p, size_t n)
{
	struct rl_token_policy pol = {
	    .audience = aud, .leeway_ms = RL_TOKEN_DEFAULT_LEEWAY_MS, .now_ms = FUZZ_NOW_MS};
	struct rl_token_claims c;
	char why[RL_TOKEN_WHY_MAX];
	enum rl_token_err e = rl_token_verify(k, &pol, p, n, &c, why);

	FUZZ_CHECK((unsigned)e < RL_TOKEN_NERRS);
	if (e == RL_TOKEN_OK)
		fuzz_accepted(&c);
	else
		FUZZ_CHECK(c.perm == NULL && why[0] != '\0' && strlen(why) < RL_TOKEN_WHY_MAX);
	rl_perm_free(c.perm);
}

static void fuzz_signed(const uint8_t *p, size_t n)
{
	static char tok[4 * RL_TOKEN_MAX_BYTES + 256];
	const uint8_t *nul = memchr(p, 0, n);
	size_t hn = nul ? (size_t)(nul - p) : n / 2;
	const uint8_t *pl = nul ? nul + 1 : p + hn;
	long tn;

	if (n > 2 * RL_TOKEN_MAX_BYTES)
		return;
	tn = rl_token_sign(hs, p, hn, pl, (size_t)(p + n - pl), tok, sizeof tok);
	FUZZ_CHECK(tn > 0);
	fuzz_verify(keys1, NULL, (const uint8_t *)tok, (size_t)tn);
	fuzz_verify(keys2, "relay", (const uint8_t *)tok, (size_t)tn);
}

static void fuzz_claims(const uint8_t *p, size_t n)
{
	static const char *const auds[2] = {NULL, "relay"};

	for (int i = 0; i < 2; i++) {
		struct rl_token_policy pol = {.audience = auds[i],
					      .leeway_ms = RL_TOKEN_DEFAULT_LEEWAY_MS,
					      .now_ms = FUZZ_NOW_MS};
		struct rl_token_claims c;
		char why[RL_TOKEN_WHY_MAX];

		if (rl_token_claims_parse(p, n, &pol, &c, why) == RL_TOKEN_OK)
			fuzz_accepted(&c);
		else
			FUZZ_CHECK(c.perm == NULL);
		rl_perm_free(c.perm);
	}
}

/* ---- permissions: compiled vs naive ------------------------------------------ */

#define FUZZ_PATS 200

struct naive {
	uint8_t pat[FUZZ_PATS][72];
	size_t len[FUZZ_PATS];
	size_t n;
};

static bool naive_allows(const struct naive *nv, const uint8_t *name, size_t n)
{
	for (size_t i = 0; i < nv->n; i++) {
		const uint8_t *p = nv->pat[i];
		size_t l = nv->len[i];

		if (l > 0 && p[l - 1] == '*') {
			if (l - 1 <= n && memcmp(p, name, l - 1) == 0)
				return true;
		} else if (l == n && memcmp(p, name, n) == 0) {
			return true;
		}
	}
	return false;
}

/* The list <key> of the rooms object <rooms>, decoded. */
static void naive_list(struct relay_span rooms, const char *key, struct naive *nv)
{
	struct relay_json_field f = {.key = key};
	struct rl_json_strs it;
	struct relay_span t;

	nv->n = 0;
	FUZZ_CHECK(relay_json_parse(rooms.p, rooms.n, &f, 1, NULL) == 0);
	if (f.kind != RELAY_JSON_ARRAY)
		return;
	rl_json_strs_init(&it, f.raw);
	while (nv->n < FUZZ_PATS && rl_json_strs_next(&it, &t) == 1) {
		long l = relay_json_string_decode(t, nv->pat[nv->n], sizeof nv->pat[0]);
		FUZZ_CHECK(l >= 0 && (size_t)l <= 66); /* compile accepted it */
		nv->len[nv->n++] = (size_t)l;
	}
}

static void perm_agree(const struct rl_perm *p, enum rl_perm_op op, const struct naive *nv,
		       const uint8_t *name, size_t n)
{
	if (n > RELAY_ROOM_MAX_BYTES + 8)
		return;
	FUZZ_CHECK(rl_perm_allows(p, op, name, n) == naive_allows(nv, name, n));
}

static void fuzz_perm(const uint8_t *p, size_t n)
{
	static struct naive nv[RL_PERM_NOPS];
	static const char *const keys[RL_PERM_NOPS] = {"join", "publish"};
	struct relay_span rooms = {p, n};
	struct rl_perm *perm;
	char why[160];
	uint8_t name[80];

	if (relay_json_parse(p, n, NULL, 0, NULL) != 0)
		return;
	if (rl_perm_compile(rooms, &perm, why, sizeof why) != 0)
		return;
	for (int op = 0; op < RL_PERM_NOPS; op++) {
		naive_list(rooms, keys[op], &nv[op]);
		perm_agree(perm, (enum rl_perm_op)op, &nv[op], p, n);
		for (size_t i = 0; i < nv[0].n + nv[1].n; i++) {
			const struct naive *src = &nv[i < nv[0].n ? 0 : 1];
			size_t k = i < nv[0].n ? i : i - nv[0].n, l = src->len[k];

			memcpy(name, src->pat[k], l);
			perm_agree(perm, (enum rl_perm_op)op, &nv[op], name, l);
			if (l > 0)
				perm_agree(perm, (enum rl_perm_op)op, &nv[op], name, l - 1);
			if (l > 1)
				perm_agree(perm, (enum rl_perm_op)op, &nv[op], name, l - 2);
			name[l] = 'x';
			perm_agree(perm, (enum rl_perm_op)op, &nv[op], name, l + 1);
			if (l > 0 && name[l - 1] == '*') {
				name[l - 1] = 'y';
				perm_agree(perm, (enum rl_perm_op)op, &nv[op], name, l);
			}
		}
	}
	rl_perm_free(perm);
}

/* ---- base64url ------------------------------------------------------------ */

static void fuzz_b64(const uint8_t *p, size_t n)
{
	static uint8_t dec[3 * 4096];
	static char enc[4 * 4096];
	long d;

	if (n > 4096)
		return;
	d = rl_b64url_decode((const char *)p, n, dec, sizeof dec);
	if (d >= 0) { /* strict: only the canonical text of its bytes decodes */
		FUZZ_CHECK(rl_b64url_len((size_t)d) == n);
		rl_b64url_encode(dec, (size_t)d, enc);
		FUZZ_CHECK(memcmp(enc, p, n) == 0);
	}
	rl_b64url_encode(p, n, enc);
	FUZZ_CHECK(rl_b64url_decode(enc, rl_b64url_len(n), dec, sizeof dec) == (long)n);
	FUZZ_CHECK(memcmp(dec, p, n) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	switch (data[0] & 3) {
	case 0:
		fuzz_verify(keys2, NULL, data + 1, size - 1);
		fuzz_verify(keys1, "relay", data + 1, size - 1);
		break;
	case 1:
		fuzz_signed(data + 1, size - 1);
		break;
	case 2:
		fuzz_claims(data + 1, size - 1);
		break;
	default:
		fuzz_perm(data + 1, size - 1);
		break;
	}
	fuzz_b64(data + 1, size - 1);
	return 0;
}
