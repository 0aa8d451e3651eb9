/* test_token.c -- token key files, verification and minting (token.c), one
 * test per rule of protocol-v1-ext.md §2 / §7 "Tokens". Keys are generated
 * per test process (token_fixture.c); no private key is committed. */
#include "unit.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "relay/token.h"
#include "token_fixture.h"

#ifdef RL_TEST_ASAN
size_t __sanitizer_get_current_allocated_bytes(void); /* gcc ships no header */
#else
#include <malloc.h>
#endif

#define NOW_S 1700000000ll
#define HS "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define ED "{\"alg\":\"EdDSA\",\"typ\":\"JWT\"}"

static struct tok_fixture fx;
static struct rl_token_keys *keys;
static struct rl_token_policy pol;
static struct rl_token_claims cl;
static char why[RL_TOKEN_WHY_MAX];
static char err[256];
static char tok[8192];

static void setup(void)
{
	cr_assert(tok_fixture_make(&fx) == 0);
	pol = (struct rl_token_policy){.leeway_ms = RL_TOKEN_DEFAULT_LEEWAY_MS,
				       .now_ms = NOW_S * 1000};
}

static void teardown(void)
{
	rl_token_keys_free(keys);
	keys = NULL;
	rl_perm_free(cl.perm);
	cl.perm = NULL;
	tok_fixture_remove(&fx);
}

TestSuite(token, .init = setup, .fini = teardown);

/* Loads the key specs (NULL-terminated) "[KID=]NAME", NAME inside the
 * fixture directory; returns what rl_token_keys_load returned. */
static int load(const char *first, ...)
{
	char specs[RL_TOKEN_MAX_KEYS + 1][256];
	const char *ptr[RL_TOKEN_MAX_KEYS + 1];
	const char *s = first;
	size_t n = 0;
	va_list ap;

	va_start(ap, first);
	for (; s && n <= RL_TOKEN_MAX_KEYS; s = va_arg(ap, const char *), n++) {
		const char *eq = strchr(s, '=');

		if (eq)
			snprintf(specs[n], sizeof specs[n], "%.*s=%s/%s", (int)(eq - s), s, fx.dir,
				 eq + 1);
		else
			snprintf(specs[n], sizeof specs[n], "%s/%s", fx.dir, s);
		ptr[n] = specs[n];
	}
	va_end(ap);
	rl_token_keys_free(keys);
	keys = NULL;
	return rl_token_keys_load(ptr, n, &keys, err, sizeof err);
}

static struct rl_token_signer *signer(const char *name)
{
	struct rl_token_signer *s = NULL;

	cr_assert(rl_token_signer_load(tok_fixture_path(&fx, name), &s, err, sizeof err) == 0, "%s",
		  err);
	return s;
}

/* Signs <hdr> and the claims printed from <fmt> with the key file <key>. */
static const char *mint(const char *key, const char *hdr, const char *fmt, ...)
{
	struct rl_token_signer *s = signer(key);
	char payload[8192];
	va_list ap;
	long n;

	va_start(ap, fmt);
	vsnprintf(payload, sizeof payload, fmt, ap);
	va_end(ap);
	n = rl_token_sign(s, hdr, strlen(hdr), payload, strlen(payload), tok, sizeof tok);
	rl_token_signer_free(s);
	cr_assert(n > 0, "sign: %ld", n);
	return tok;
}

/* Verifies <t>; every message is checked to hold no key material. */
static enum rl_token_err verify(const char *t)
{
	enum rl_token_err e;

	rl_perm_free(cl.perm);
	memset(&cl, 0, sizeof cl);
	why[0] = '\0';
	e = rl_token_verify(keys, &pol, (const uint8_t *)t, strlen(t), &cl, why);
	cr_assert(strstr(why, fx.hs_secret) == NULL && strstr(why, fx.hs2_secret) == NULL);
	if (e != RL_TOKEN_OK)
		cr_assert(why[0] != '\0' && cl.perm == NULL, "a failure says why");
	return e;
}

#define ASSERT_REFUSED(t, code, text)                                                              \
	do {                                                                                       \
		enum rl_token_err e_ = verify(t);                                                  \
		cr_assert_eq(e_, code, "got %s (%s), want %s", rl_token_err_name(e_), why,         \
			     rl_token_err_name(code));                                             \
		cr_assert(strstr(why, text) != NULL, "message '%s' lacks '%s'", why, text);        \
	} while (0)

#define ASSERT_OK(t)                                                                               \
	do {                                                                                       \
		enum rl_token_err e_ = verify(t);                                                  \
		cr_assert_eq(e_, RL_TOKEN_OK, "refused: %s: %s", rl_token_err_name(e_), why);      \
	} while (0)

#define CLAIMS_A "{\"sub\":\"a\",\"exp\":1700000060}"
#define SUB_EXP "\"sub\":\"alice\",\"exp\":%lld"

/* Heap bytes in use (ASan's allocator under ASan, glibc's otherwise): a leak
 * repeated in a loop shows here even where LeakSanitizer's conservative stack
 * scan still finds a stale pointer to it. */
static size_t heap_in_use(void)
{
#ifdef RL_TEST_ASAN
	return __sanitizer_get_current_allocated_bytes();
#else
	return mallinfo2().uordblks;
#endif
}

/* ---- good tokens ---------------------------------------------------------- */

Test(token, hs256_token_gives_sub_exp_in_ms_and_no_room_limits)
{
	cr_assert(load("hs.key", NULL) == 0, "%s", err);
	ASSERT_OK(mint("hs.key", HS, "{" SUB_EXP ",\"iat\":%lld}", NOW_S + 60, NOW_S));
	cr_assert_str_eq(cl.sub, "alice");
	cr_assert_eq(cl.sub_len, 5);
	cr_assert_eq(cl.exp_ms, (NOW_S + 60) * 1000);
	cr_assert_null(cl.perm, "no rooms claim: every room");
	cr_assert_eq(rl_token_keys_alg(keys, 0), RL_TOKEN_HS256);
	cr_assert_str_eq(rl_token_keys_kid(keys, 0), "hs.key", "default kid: the base name");
}

Test(token, eddsa_token_verifies_with_the_public_key)
{
	cr_assert(load("ed.pub", NULL) == 0, "%s", err);
	cr_assert_eq(rl_token_keys_alg(keys, 0), RL_TOKEN_EDDSA);
	ASSERT_OK(mint("ed.pem", ED,
		       "{" SUB_EXP ",\"rooms\":{\"join\":[\"lobby\"],\"publish\":[]}}",
		       NOW_S + 60));
	cr_assert_str_eq(cl.sub, "alice");
	cr_assert_not_null(cl.perm);
	cr_assert(rl_perm_allows(cl.perm, RL_PERM_JOIN, RL_J("lobby")));
	cr_assert_not(rl_perm_allows(cl.perm, RL_PERM_PUBLISH, RL_J("lobby")));
}

Test(token, secret_file_loses_one_trailing_newline_only)
{
	struct rl_token_signer *s;

	cr_assert(load("hs.key", NULL) == 0, "%s", err);
	/* the secret is the text without "\n": sign with exactly those bytes */
	cr_assert(rl_token_signer_hs256(fx.hs_secret, strlen(fx.hs_secret), &s) == 0);
	cr_assert(rl_token_sign(s, HS, strlen(HS), CLAIMS_A, strlen(CLAIMS_A), tok, sizeof tok) >
		  0);
	rl_token_signer_free(s);
	ASSERT_OK(tok);
	/* the same text with its newline is another key */
	char nl[80];
	snprintf(nl, sizeof nl, "%s\n", fx.hs_secret);
	cr_assert(rl_token_signer_hs256(nl, strlen(nl), &s) == 0);
	cr_assert(rl_token_sign(s, HS, strlen(HS), CLAIMS_A, strlen(CLAIMS_A), tok, sizeof tok) >
		  0);
	rl_token_signer_free(s);
	ASSERT_REFUSED(tok, RL_TOKEN_BAD_SIGNATURE, "does not verify");
}

/* ---- keys and algorithms -------------------------------------------------------- */

Test(token, wrong_key_fails_the_signature)
{
	cr_assert(load("hs.key", NULL) == 0, "%s", err);
	ASSERT_REFUSED(mint("hs2.key", HS, "{" SUB_EXP "}", NOW_S + 60), RL_TOKEN_BAD_SIGNATURE,
		       "does not verify");
	cr_assert(load("ed.pub", NULL) == 0, "%s", err);
	ASSERT_REFUSED(mint("ed2.pem", ED, "{" SUB_EXP "}", NOW_S + 60), RL_TOKEN_BAD_SIGNATURE,
		       "does not verify");
}

Test(token, tampered_payload_fails_the_signature)
{
	char *dot;

	cr_assert(load("ed.pub", NULL) == 0, "%s", err);
	mint("ed.pem", ED, "{" SUB_EXP "}", NOW_S + 60);
	dot = strchr(tok, '.');
	dot[3] = dot[3] == 'A' ? 'B' : 'A';
	ASSERT_REFUSED(tok, RL_TOKEN_BAD_SIGNATURE, "does not verify");
}

Test(token, alg_none_is_always_refused)
{
	cr_assert(load("hs.key", NULL) == 0, "%s", err);
	/* correctly MAC'd, so only the alg can refuse it */
	ASSERT_REFUSED(mint("hs.key", "{\"alg\":\"none\"}", "{" SUB_EXP "}", NOW_S + 60),
		       RL_TOKEN_BAD_ALG, "none");
	ASSERT_REFUSED(mint("hs.key", "{\"alg\":\"NoNe\"}", "{" SUB_EXP "}", NOW_S + 60),
		       RL_TOKEN_BAD_ALG, "none");
	/* the unsecured form: an empty signature segment */
	char *last = strrchr(tok, '.');
	last[1] = '\0';
	ASSERT_REFUSED(tok, RL_TOKEN_MALFORMED, "signature segment is empty");
}

Test(token, the_key_decides_the_algorithm_not_the_token)
{
	cr_assert(load("hs.key", NULL) == 0, "%s", err);
	ASSERT_REFUSED(mint("ed.pem", ED, "{" SUB_EXP "}", NOW_S + 60), RL_TOKEN_BAD_ALG,
		       "must be HS256");
	ASSERT_REFUSED(mint("hs.key", "{\"alg\":\"RS256\"}", "{" SUB_EXP "}", NOW_S + 60),
		       RL_TOKEN_BAD_ALG, "must be HS256");
	ASSERT_REFUSED(mint("hs.key", "{\"alg\":\"hs256\"}", "{" SUB_EXP "}", NOW_S + 60),
		       RL_TOKEN_BAD_ALG, "must be HS256");
	cr_assert(load("ed.pub", NULL) == 0, "%s", err);
	ASSERT_REFUSED(mint("hs.key", HS, "{" SUB_EXP "}", NOW_S + 60), RL_TOKEN_BAD_ALG,
		       "must be EdDSA");
}

/* The classic confusion: the attacker knows the Ed25519 public key and MACs
 * an HS256 token with its bytes, hoping the verifier uses them as a secret. */
static void confusion_with(const void *key, size_t n)
{
	struct rl_token_signer *s;
	char claims[128];

	snprintf(claims, sizeof claims, "{" SUB_EXP "}", NOW_S + 60);
	cr_assert(rl_token_signer_hs256(key, n, &s) == 0);
	cr_assert(rl_token_sign(s, HS, strlen(HS), claims, strlen(claims), tok, sizeof tok) > 0);
	rl_token_signer_free(s);
	ASSERT_REFUSED(tok, RL_TOKEN_BAD_ALG, "must be EdDSA");
}

Test(token, hs256_token_maced_with_the_ed25519_public_key_is_refused)
{
	uint8_t pem[1024], der[256];
	long pn = tok_fixture_read(&fx, "ed.pub", pem, sizeof pem);
	long dn = tok_fixture_read(&fx, "ed.der", der, sizeof der);

	cr_assert(pn > 0 && dn > 0);
	cr_assert(load("ed.pub", NULL) == 0, "%s", err);
	confusion_with(pem, (size_t)pn);     /* the PEM text */
	confusion_with(der, (size_t)dn);     /* DER SubjectPublicKeyInfo */
	confusion_with(der + dn - 32, 32);   /* the raw 32-byte key */
	confusion_with(pem, (size_t)pn - 1); /* PEM without its newline */
}

Test(token, several_keys_need_a_kid_and_the_kid_picks_the_key)
{
	cr_assert(load("old=hs.key", "new=ed.pub", NULL) == 0, "%s", err);
	cr_assert_eq(rl_token_keys_count(keys), 2);
	cr_assert_str_eq(rl_token_keys_kid(keys, 1), "new");
	ASSERT_REFUSED(mint("hs.key", HS, "{" SUB_EXP "}", NOW_S + 60), RL_TOKEN_NO_KID, "no kid");
	ASSERT_OK(
	    mint("hs.key", "{\"alg\":\"HS256\",\"kid\":\"old\"}", "{" SUB_EXP "}", NOW_S + 60));
	cr_assert_eq(cl.key, 0);
	ASSERT_OK(
	    mint("ed.pem", "{\"alg\":\"EdDSA\",\"kid\":\"new\"}", "{" SUB_EXP "}", NOW_S + 60));
	cr_assert_eq(cl.key, 1);
	/* a kid naming the other key: that key's algorithm is required */
	ASSERT_REFUSED(
	    mint("hs.key", "{\"alg\":\"HS256\",\"kid\":\"new\"}", "{" SUB_EXP "}", NOW_S + 60),
	    RL_TOKEN_BAD_ALG, "must be EdDSA");
}

Test(token, unknown_kid_is_refused_with_several_keys)
{
	cr_assert(load("a=hs.key", "b=hs2.key", NULL) == 0, "%s", err);
	ASSERT_REFUSED(
	    mint("hs.key", "{\"alg\":\"HS256\",\"kid\":\"c\"}", "{" SUB_EXP "}", NOW_S + 60),
	    RL_TOKEN_UNKNOWN_KID, "kid names no key");
	ASSERT_REFUSED(
	    mint("hs.key", "{\"alg\":\"HS256\",\"kid\":\"A\"}", "{" SUB_EXP "}", NOW_S + 60),
	    RL_TOKEN_UNKNOWN_KID, "kid names no key");
}

Test(token, with_one_key_the_kid_is_not_compared)
{
	cr_assert(load("hs.key", NULL) == 0, "%s", err);
	ASSERT_OK(mint("hs.key", "{\"alg\":\"HS256\",\"kid\":\"whatever\"}", "{" SUB_EXP "}",
		       NOW_S + 60));
}

Test(token, header_rules)
{
	cr_assert(load("hs.key", NULL) == 0, "%s", err);
	ASSERT_REFUSED(mint("hs.key", "{\"typ\":\"JWT\"}", "{" SUB_EXP "}", NOW_S + 60),
		       RL_TOKEN_BAD_HEADER, "no alg");
	ASSERT_REFUSED(mint("hs.key", "{\"alg\":1}", "{" SUB_EXP "}", NOW_S + 60),
		       RL_TOKEN_BAD_HEADER, "alg is not a string");
	ASSERT_REFUSED(mint("hs.key", "{\"alg\":\"HS256\",\"kid\":7}", "{" SUB_EXP "}", NOW_S + 60),
		       RL_TOKEN_BAD_HEADER, "kid is not a string");
	ASSERT_REFUSED(
	    mint("hs.key", "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", "{" SUB_EXP "}", NOW_S + 60),
	    RL_TOKEN_BAD_HEADER, "crit");
	ASSERT_REFUSED(mint("hs.key", "[\"HS256\"]", "{" SUB_EXP "}", NOW_S + 60),
		       RL_TOKEN_BAD_HEADER, "not a JSON object");
	ASSERT_REFUSED(mint("hs.key", "{\"alg\":\"HS256\"", "{" SUB_EXP "}", NOW_S + 60),
		       RL_TOKEN_BAD_HEADER, "not a JSON object");
	/* nested alg does not count */
	ASSERT_REFUSED(mint("hs.key", "{\"x\":{\"alg\":\"HS256\"}}", "{" SUB_EXP "}", NOW_S + 60),
		       RL_TOKEN_BAD_HEADER, "no alg");
}

/* ---- form ------------------------------------------------------------------------ */

Test(token, oversized_token_is_refused_and_4096_bytes_is_not)
{
	char pad[4096];
	size_t n;

	cr_assert(load("hs.key", NULL) == 0, "%s", err);
	/* grow a padding claim until the token is exactly 4096 bytes */
	for (size_t k = 3100; k > 2000; k--) {
		memset(pad, 'x', k);
		pad[k] = '\0';
		n = strlen(mint("hs.key", HS, "{" SUB_EXP ",\"pad\":\"%s\"}", NOW_S + 60, pad));
		if (n <= RL_TOKEN_MAX_BYTES)
			break;
	}
	cr_assert_eq(n, RL_TOKEN_MAX_BYTES, "could not build a 4096-byte token (%zu)", n);
	ASSERT_OK(tok);
	memset(pad, 'x', 3100);
	pad[3100] = '\0';
	mint("hs.key", HS, "{" SUB_EXP ",\"pad\":\"%s\"}", NOW_S + 60, pad);
	cr_assert_gt(strlen(tok), RL_TOKEN_MAX_BYTES);
	ASSERT_REFUSED(tok, RL_TOKEN_TOO_LONG, "longer than 4096");
}

Test(token, segment_count_and_empty_segments)
{
	char t[8192 + 16];

	cr_assert(load("hs.key", NULL) == 0, "%s", err);
	mint("hs.key", HS, "{" SUB_EXP "}", NOW_S + 60);
	snprintf(t, sizeof t, "%s.AAAA", tok);
	ASSERT_REFUSED(t, RL_TOKEN_MALFORMED, "three");
	*strrchr(tok, '.') = '\0';
	ASSERT_REFUSED(tok, RL_TOKEN_MALFORMED, "three");
	ASSERT_REFUSED("", RL_TOKEN_MALFORMED, "three");
	ASSERT_REFUSED("..", RL_TOKEN_MALFORMED, "header segment is empty");
	mint("hs.key", HS, "{" SUB_EXP "}", NOW_S + 60);
	char *d1 = strchr(tok, '.');
	snprintf(t, sizeof t, "%.*s.%s", (int)(d1 - tok), tok, strchr(d1 + 1, '.'));
	ASSERT_REFUSED(t, RL_TOKEN_MALFORMED, "payload segment is empty");
}

/* Replaces one character of segment <seg> (0-2) at <at> (negative: from
 * its end) with <c>, or appends <c> when <at> is past its end. */
static const char *poke(int seg, int at, const char *c)
{
	static char t[8192 + 16];
	char *s = tok, *e;

	for (int i = 0; i < seg; i++)
		s = strchr(s, '.') + 1;
	e = strchr(s, '.');
	if (e == NULL)
		e = s + strlen(s);
	size_t pos = at < 0 ? (size_t)(e - s) + (size_t)at : (size_t)at;
	size_t off = (size_t)(s - tok) + pos;
	snprintf(t, sizeof t, "%.*s%s%s", (int)off, tok, c,
		 tok + off + (pos < (size_t)(e - s) ? 1 : 0));
	return t;
}

Test(token, malformed_base64url_is_refused)
{
	cr_assert(load("hs.key", NULL) == 0, "%s", err);
	mint("hs.key", HS, "{" SUB_EXP "}", NOW_S + 60);
	ASSERT_REFUSED(poke(0, 2, "+"), RL_TOKEN_MALFORMED, "header is not base64url");
	ASSERT_REFUSED(poke(0, 2, "/"), RL_TOKEN_MALFORMED, "header is not base64url");
	ASSERT_REFUSED(poke(0, 2, " "), RL_TOKEN_MALFORMED, "header is not base64url");
	ASSERT_REFUSED(poke(1, 1, "\xc3"), RL_TOKEN_BAD_SIGNATURE, "does not verify");
	ASSERT_REFUSED(poke(2, 0, "="), RL_TOKEN_MALFORMED, "signature is not base64url");
	/* padding: HS256's 32 bytes are 43 characters; "=" makes it 44 */
	ASSERT_REFUSED(poke(2, 1000, "="), RL_TOKEN_BAD_SIGNATURE, "wrong length");
}

Test(token, base64url_is_strict)
{
	uint8_t out[16];

	cr_assert_eq(rl_b64url_decode("YQ", 2, out, sizeof out), 1);
	cr_assert_eq(out[0], 'a');
	cr_assert_eq(rl_b64url_decode("YR", 2, out, sizeof out), -1, "trailing bits set");
	cr_assert_eq(rl_b64url_decode("YWI", 3, out, sizeof out), 2);
	cr_assert_eq(rl_b64url_decode("YWJ", 3, out, sizeof out), -1, "trailing bits set");
	cr_assert_eq(rl_b64url_decode("YWJjZ", 5, out, sizeof out), -1, "length % 4 == 1");
	cr_assert_eq(rl_b64url_decode("YQ==", 4, out, sizeof out), -1, "padding");
	cr_assert_eq(rl_b64url_decode("-_-_", 4, out, sizeof out), 3);
	cr_assert(out[0] == 0xfb && out[1] == 0xff && out[2] == 0xbf);
	cr_assert_eq(rl_b64url_decode("+/+/", 4, out, sizeof out), -1, "standard alphabet");
	cr_assert_eq(rl_b64url_decode("YWJjZGVm", 8, out, 5), -1, "does not fit");
	/* every byte value: valid exactly when in the alphabet, with its index */
	static const char abc[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	for (int c = 0; c < 256; c++) {
		char in[4] = {'A', 'A', 'A', (char)c};
		const char *at = c ? memchr(abc, c, 64) : NULL;
		long n = rl_b64url_decode(in, 4, out, sizeof out);
		cr_assert_eq(n, at ? 3 : -1, "byte 0x%02x", c);
		if (at)
			cr_assert_eq(out[2], (uint8_t)(at - abc), "byte 0x%02x", c);
	}
	for (size_t n = 0; n < 16; n++) {
		uint8_t in[16], back[16];
		char enc[32];
		for (size_t i = 0; i < n; i++)
			in[i] = (uint8_t)(i * 37 + n);
		rl_b64url_encode(in, n, enc);
		cr_assert_eq(rl_b64url_decode(enc, rl_b64url_len(n), back, sizeof back), (long)n);
		cr_assert(memcmp(in, back, n) == 0);
	}
}

Test(token, payload_that_is_not_a_json_object_is_refused)
{
	cr_assert(load("hs.key", NULL) == 0, "%s", err);
	ASSERT_REFUSED(mint("hs.key", HS, "{\"sub\":\"alice\",\"exp\":%lld", NOW_S + 60),
		       RL_TOKEN_BAD_CLAIMS, "not a JSON object");
	ASSERT_REFUSED(mint("hs.key", HS, "[%lld]", NOW_S + 60), RL_TOKEN_BAD_CLAIMS,
		       "not a JSON object");
	ASSERT_REFUSED(mint("hs.key", HS, "{\"sub\":\"\xff\",\"exp\":%lld}", NOW_S + 60),
		       RL_TOKEN_BAD_CLAIMS, "not a JSON object");
}

/* ---- time ------------------------------------------------------------------------ */

Test(token, expired_token_is_refused)
{
	cr_assert(load("hs.key", NULL) == 0, "%s", err);
	ASSERT_REFUSED(mint("hs.key", HS, "{" SUB_EXP "}", NOW_S - 31), RL_TOKEN_EXPIRED,
		       "expired");
	/* the boundary: valid while now < exp + leeway */
	ASSERT_REFUSED(mint("hs.key", HS, "{" SUB_EXP "}", NOW_S - 30), RL_TOKEN_EXPIRED,
		       "expired");
	pol.leeway_ms = 0;
	ASSERT_REFUSED(mint("hs.key", HS, "{" SUB_EXP "}", NOW_S), RL_TOKEN_EXPIRED, "expired");
}

Test(token, expired_within_the_leeway_is_accepted)
{
	cr_assert(load("hs.key", NULL) == 0, "%s", err);
	ASSERT_OK(mint("hs.key", HS, "{" SUB_EXP "}", NOW_S - 29));
	cr_assert_eq(cl.exp_ms, (NOW_S - 29) * 1000, "exp is reported without the leeway");
	ASSERT_OK(mint("hs.key", HS, "{\"sub\":\"a\",\"exp\":%lld.999}", NOW_S - 30));
	cr_assert_eq(cl.exp_ms, (NOW_S - 30) * 1000 + 999);
}

Test(token, exp_is_required_and_a_number)
{
	cr_assert(load("hs.key", NULL) == 0, "%s", err);
	ASSERT_REFUSED(mint("hs.key", HS, "{\"sub\":\"alice\"}"), RL_TOKEN_BAD_EXP, "no exp");
	ASSERT_REFUSED(mint("hs.key", HS, "{\"sub\":\"a\",\"exp\":\"%lld\"}", NOW_S + 60),
		       RL_TOKEN_BAD_EXP, "exp is not a number");
	ASSERT_REFUSED(mint("hs.key", HS, "{\"sub\":\"a\",\"exp\":null}"), RL_TOKEN_BAD_EXP,
		       "exp is not a number");
	ASSERT_REFUSED(mint("hs.key", HS, "{\"sub\":\"a\",\"exp\":1e400}"), RL_TOKEN_BAD_EXP,
		       "out of range");
	ASSERT_REFUSED(mint("hs.key", HS, "{\"sub\":\"a\",\"exp\":-1}"), RL_TOKEN_BAD_EXP,
		       "out of range");
	/* exponent and fraction forms are numbers of seconds too */
	ASSERT_OK(mint("hs.key", HS, "{\"sub\":\"a\",\"exp\":1.70000006e9}"));
	cr_assert_eq(cl.exp_ms, (NOW_S + 60) * 1000);
	ASSERT_OK(mint("hs.key", HS, "{\"sub\":\"a\",\"exp\":170000006000E-2}"));
	cr_assert_eq(cl.exp_ms, (NOW_S + 60) * 1000);
	ASSERT_OK(mint("hs.key", HS, "{\"sub\":\"a\",\"exp\":9999999999999}"));
	cr_assert_eq(cl.exp_ms, 9999999999999000ll);
	ASSERT_REFUSED(mint("hs.key", HS, "{\"sub\":\"a\",\"exp\":10000000000000}"),
		       RL_TOKEN_BAD_EXP, "out of range");
}

Test(token, nbf_in_the_future_is_refused_within_the_leeway_accepted)
{
	cr_assert(load("hs.key", NULL) == 0, "%s", err);
	ASSERT_REFUSED(mint("hs.key", HS, "{" SUB_EXP ",\"nbf\":%lld}", NOW_S + 600, NOW_S + 31),
		       RL_TOKEN_NOT_YET_VALID, "not valid yet");
	ASSERT_OK(mint("hs.key", HS, "{" SUB_EXP ",\"nbf\":%lld}", NOW_S + 600, NOW_S + 30));
	ASSERT_OK(mint("hs.key", HS, "{" SUB_EXP ",\"nbf\":%lld}", NOW_S + 600, NOW_S - 5));
	ASSERT_REFUSED(mint("hs.key", HS, "{" SUB_EXP ",\"nbf\":\"now\"}", NOW_S + 600),
		       RL_TOKEN_BAD_NBF, "nbf is not a number");
}

/* ---- audience ---------------------------------------------------------------------- */

Test(token, audience_string_must_equal_the_configured_one)
{
	cr_assert(load("hs.key", NULL) == 0, "%s", err);
	pol.audience = "relay.example";
	ASSERT_OK(mint("hs.key", HS, "{" SUB_EXP ",\"aud\":\"relay.example\"}", NOW_S + 60));
	ASSERT_REFUSED(mint("hs.key", HS, "{" SUB_EXP ",\"aud\":\"other\"}", NOW_S + 60),
		       RL_TOKEN_BAD_AUDIENCE, "does not name this server");
	ASSERT_REFUSED(mint("hs.key", HS, "{" SUB_EXP ",\"aud\":\"relay.exampl\"}", NOW_S + 60),
		       RL_TOKEN_BAD_AUDIENCE, "does not name this server");
	ASSERT_REFUSED(mint("hs.key", HS, "{" SUB_EXP "}", NOW_S + 60), RL_TOKEN_BAD_AUDIENCE,
		       "no aud");
	ASSERT_REFUSED(mint("hs.key", HS, "{" SUB_EXP ",\"aud\":7}", NOW_S + 60),
		       RL_TOKEN_BAD_AUDIENCE, "not a string or an array");
}

Test(token, audience_array_must_contain_the_configured_one)
{
	cr_assert(load("hs.key", NULL) == 0, "%s", err);
	pol.audience = "relay.example";
	ASSERT_OK(
	    mint("hs.key", HS, "{" SUB_EXP ",\"aud\":[\"x\", \"relay.example\" ]}", NOW_S + 60));
	ASSERT_REFUSED(mint("hs.key", HS, "{" SUB_EXP ",\"aud\":[\"x\",\"y\"]}", NOW_S + 60),
		       RL_TOKEN_BAD_AUDIENCE, "does not name this server");
	ASSERT_REFUSED(mint("hs.key", HS, "{" SUB_EXP ",\"aud\":[]}", NOW_S + 60),
		       RL_TOKEN_BAD_AUDIENCE, "does not name this server");
	ASSERT_REFUSED(
	    mint("hs.key", HS, "{" SUB_EXP ",\"aud\":[1,\"relay.example\"]}", NOW_S + 60),
	    RL_TOKEN_BAD_AUDIENCE, "non-string");
}

Test(token, audience_is_ignored_when_none_is_configured)
{
	cr_assert(load("hs.key", NULL) == 0, "%s", err);
	ASSERT_OK(mint("hs.key", HS, "{" SUB_EXP ",\"aud\":\"anything\"}", NOW_S + 60));
	ASSERT_OK(mint("hs.key", HS, "{" SUB_EXP ",\"aud\":42}", NOW_S + 60));
}

/* ---- sub --------------------------------------------------------------------------- */

Test(token, sub_must_be_a_valid_userid)
{
	char long_sub[200];

	cr_assert(load("hs.key", NULL) == 0, "%s", err);
	ASSERT_REFUSED(mint("hs.key", HS, "{\"exp\":%lld}", NOW_S + 60), RL_TOKEN_BAD_SUB,
		       "no sub");
	ASSERT_REFUSED(mint("hs.key", HS, "{\"sub\":\"\",\"exp\":%lld}", NOW_S + 60),
		       RL_TOKEN_BAD_SUB, "sub is empty");
	ASSERT_REFUSED(mint("hs.key", HS, "{\"sub\":42,\"exp\":%lld}", NOW_S + 60),
		       RL_TOKEN_BAD_SUB, "sub is not a string");
	ASSERT_REFUSED(mint("hs.key", HS, "{\"sub\":null,\"exp\":%lld}", NOW_S + 60),
		       RL_TOKEN_BAD_SUB, "sub is not a string");
	ASSERT_REFUSED(mint("hs.key", HS, "{\"sub\":\"a\\u0001b\",\"exp\":%lld}", NOW_S + 60),
		       RL_TOKEN_BAD_SUB, "not a valid userId");
	ASSERT_REFUSED(mint("hs.key", HS, "{\"sub\":\"\\ud800\",\"exp\":%lld}", NOW_S + 60),
		       RL_TOKEN_BAD_SUB, "not a valid userId");
	memset(long_sub, 'u', 129);
	long_sub[129] = '\0';
	ASSERT_REFUSED(mint("hs.key", HS, "{\"sub\":\"%s\",\"exp\":%lld}", long_sub, NOW_S + 60),
		       RL_TOKEN_BAD_SUB, "longer than 128");
	long_sub[128] = '\0';
	ASSERT_OK(mint("hs.key", HS, "{\"sub\":\"%s\",\"exp\":%lld}", long_sub, NOW_S + 60));
	cr_assert_eq(cl.sub_len, 128);
	cr_assert_str_eq(cl.sub, long_sub);
	/* escapes are decoded: the userId is the string's value */
	ASSERT_OK(
	    mint("hs.key", HS, "{\"sub\":\"caf\\u00e9 \\\"x\\\"\",\"exp\":%lld}", NOW_S + 60));
	cr_assert_str_eq(cl.sub, "café \"x\"");
}

/* ---- rooms ------------------------------------------------------------------------- */

Test(token, rooms_claim_is_compiled_and_checked)
{
	cr_assert(load("hs.key", NULL) == 0, "%s", err);
	ASSERT_OK(mint("hs.key", HS,
		       "{" SUB_EXP
		       ",\"rooms\":{\"join\":[\"lobby\",\"team.*\"],\"publish\":[\"team.*\"]}}",
		       NOW_S + 60));
	cr_assert(rl_perm_allows(cl.perm, RL_PERM_JOIN, RL_J("lobby")));
	cr_assert(rl_perm_allows(cl.perm, RL_PERM_JOIN, RL_J("team.a")));
	cr_assert_not(rl_perm_allows(cl.perm, RL_PERM_PUBLISH, RL_J("lobby")));
	cr_assert(rl_perm_allows(cl.perm, RL_PERM_PUBLISH, RL_J("team.")));
	ASSERT_REFUSED(mint("hs.key", HS, "{" SUB_EXP ",\"rooms\":[\"lobby\"]}", NOW_S + 60),
		       RL_TOKEN_BAD_ROOMS, "rooms is not an object");
	ASSERT_REFUSED(mint("hs.key", HS, "{" SUB_EXP ",\"rooms\":{\"join\":[\"\"]}}", NOW_S + 60),
		       RL_TOKEN_BAD_ROOMS, "rooms.join[0] is not a valid room pattern");
	RL_ASSERT_NO_LEAKS();
}

/* ---- key files ----------------------------------------------------------------------- */

Test(token, short_secret_is_refused_naming_the_file)
{
	cr_assert_eq(load("short.key", NULL), -EINVAL);
	cr_assert(strstr(err, tok_fixture_path(&fx, "short.key")) != NULL, "%s", err);
	cr_assert(strstr(err, "at least 32 bytes") != NULL, "%s", err);
	cr_assert(strstr(err, "0123456789") == NULL, "no secret in the message: %s", err);
	cr_assert_null(keys);
}

Test(token, non_ed25519_public_key_is_refused_naming_the_file)
{
	cr_assert_eq(load("ec.pub", NULL), -EINVAL);
	cr_assert(strstr(err, tok_fixture_path(&fx, "ec.pub")) != NULL, "%s", err);
	cr_assert(strstr(err, "only Ed25519") != NULL, "%s", err);
	cr_assert(strchr(err, '\n') == NULL, "one line");
}

Test(token, private_key_pem_is_not_taken_as_a_secret)
{
	cr_assert_eq(load("ed.pem", NULL), -EINVAL);
	cr_assert(strstr(err, "not a public key") != NULL, "%s", err);
	cr_assert(strstr(err, tok_fixture_path(&fx, "ed.pem")) != NULL, "%s", err);
}

Test(token, missing_file_and_bad_specs_are_reported)
{
	cr_assert_eq(load("nope.key", NULL), -ENOENT);
	cr_assert(strstr(err, "nope.key") != NULL, "%s", err);
	cr_assert_eq(load("a=hs.key", "a=hs2.key", NULL), -EINVAL);
	cr_assert(strstr(err, "'a' is already taken") != NULL, "%s", err);
	cr_assert_eq(load("hs.key", "hs.key", NULL), -EINVAL, "same default kid twice");
	const char *none[1] = {NULL};
	cr_assert_eq(rl_token_keys_load(none, 0, &keys, err, sizeof err), -EINVAL);
	const char *empty[] = {"k="};
	cr_assert_eq(rl_token_keys_load(empty, 1, &keys, err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "no file") != NULL, "%s", err);
}

Test(token, kid_equals_file_syntax)
{
	char spec[300];
	const char *p[1] = {spec};

	/* '=' after a '/' belongs to the path: the whole text is the file */
	cr_assert(link(tok_fixture_path(&fx, "hs.key"), tok_fixture_path(&fx, "a=b")) == 0);
	snprintf(spec, sizeof spec, "%s/a=b", fx.dir);
	cr_assert(rl_token_keys_load(p, 1, &keys, err, sizeof err) == 0, "%s", err);
	cr_assert_str_eq(rl_token_keys_kid(keys, 0), "a=b");
	rl_token_keys_free(keys);
	snprintf(spec, sizeof spec, "2024-01=%s/hs.key", fx.dir);
	cr_assert(rl_token_keys_load(p, 1, &keys, err, sizeof err) == 0, "%s", err);
	cr_assert_str_eq(rl_token_keys_kid(keys, 0), "2024-01");
	rl_token_keys_free(keys);
	keys = NULL;
	snprintf(spec, sizeof spec, "bad kid=%s/hs.key", fx.dir);
	cr_assert_eq(rl_token_keys_load(p, 1, &keys, err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "printable ASCII") != NULL, "%s", err);
	RL_ASSERT_NO_LEAKS();
}

Test(token, signer_refuses_a_public_key)
{
	struct rl_token_signer *s = NULL;

	cr_assert_eq(rl_token_signer_load(tok_fixture_path(&fx, "ed.pub"), &s, err, sizeof err),
		     -EINVAL);
	cr_assert(strstr(err, "a public key cannot sign") != NULL, "%s", err);
	cr_assert_eq(rl_token_signer_load(tok_fixture_path(&fx, "short.key"), &s, err, sizeof err),
		     -EINVAL);
	s = signer("ed.pem");
	cr_assert_eq(rl_token_signer_alg(s), RL_TOKEN_EDDSA);
	rl_token_signer_free(s);
	s = signer("hs.key");
	cr_assert_eq(rl_token_signer_alg(s), RL_TOKEN_HS256);
	cr_assert_eq(rl_token_sign(s, HS, strlen(HS), "{}", 2, tok, 20), -ENOSPC);
	rl_token_signer_free(s);
}

Test(token, err_names_cover_every_code)
{
	for (int e = 0; e < RL_TOKEN_NERRS; e++)
		cr_assert_str_neq(rl_token_err_name((enum rl_token_err)e), "unknown", "code %d", e);
	cr_assert_str_eq(rl_token_err_name(RL_TOKEN_NERRS), "unknown");
	cr_assert_str_eq(rl_token_alg_name(RL_TOKEN_EDDSA), "EdDSA");
}

Test(token, verifying_and_freeing_in_a_loop_keeps_the_heap_flat)
{
	static char good[1024], bad_rooms[1024], bad_sig[1024];
	size_t before;

	cr_assert(load("hs.key", "ed=ed.pub", NULL) == 0, "%s", err);
	strcpy(good, mint("hs.key", "{\"alg\":\"HS256\",\"kid\":\"hs.key\"}",
			  "{" SUB_EXP ",\"rooms\":{\"join\":[\"a\",\"b*\"],\"publish\":[\"*\"]}}",
			  NOW_S + 60));
	strcpy(bad_rooms, mint("hs.key", "{\"alg\":\"HS256\",\"kid\":\"hs.key\"}",
			       "{" SUB_EXP ",\"rooms\":{\"join\":[\"a\",7]}}", NOW_S + 60));
	strcpy(bad_sig,
	       mint("ed2.pem", "{\"alg\":\"EdDSA\",\"kid\":\"ed\"}", "{" SUB_EXP "}", NOW_S + 60));
	for (int round = 0; round < 2; round++) {
		before = heap_in_use(); /* round 0 warms OpenSSL's caches up */
		for (int i = 0; i < 1000; i++) {
			cr_assert_eq(verify(good), RL_TOKEN_OK);
			cr_assert_eq(verify(bad_rooms), RL_TOKEN_BAD_ROOMS);
			cr_assert_eq(verify(bad_sig), RL_TOKEN_BAD_SIGNATURE);
		}
	}
	rl_perm_free(cl.perm);
	cl.perm = NULL;
	cr_assert_lt(heap_in_use(), before + 8192, "heap grew by %zu bytes over 3000 verifies",
		     heap_in_use() - before);
}
