/* token.h -- access tokens (protocol-v1-ext.md §2 and §7 "Tokens"): key files,
 * verification of a JWS compact token pinned to the key's algorithm, its
 * claims, and minting (relay-cli token, tests).
 *
 * The algorithm always comes from the key: an HS256 key (a shared secret)
 * accepts only "alg":"HS256", an Ed25519 public key only "alg":"EdDSA";
 * "none" is refused before anything else is looked at. OpenSSL 3 does the
 * cryptography (EVP_MAC HMAC-SHA256, EVP_DigestVerify Ed25519); MACs are
 * compared with CRYPTO_memcmp. JSON goes through relay_json_parse.
 *
 * Key choice: with several keys, the header's `kid` names the key and a token
 * without `kid` (or with a `kid` no key has) is refused. With one key, `kid`
 * is not compared (spec §2 names the key by `kid` only "when the server has
 * several keys"); the signature still pins the token to that key.
 *
 * Threading: a struct rl_token_keys / rl_token_signer is immutable once
 * loaded and may be used by any number of threads at once (each call makes
 * its own OpenSSL contexts; the keys are only read). Handing a new key set to
 * running workers is keyring.h's job. No function here touches RCU.
 */
#ifndef RL_TOKEN_H
#define RL_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <relay/protocol.h>

#include "relay/perm.h"

#define RL_TOKEN_MAX_BYTES 4096		 /* the whole compact token */
#define RL_TOKEN_MAX_KEYS 16		 /* keys in one set (rotation) */
#define RL_TOKEN_KID_MAX 64		 /* bytes of a key id */
#define RL_TOKEN_SECRET_MIN 32		 /* HS256 secret bytes, at least */
#define RL_TOKEN_FILE_MAX 65536		 /* key files larger than this are refused */
#define RL_TOKEN_DEFAULT_LEEWAY_MS 30000 /* on exp and nbf */
#define RL_TOKEN_WHY_MAX 160		 /* a failure's message, NUL included */

enum rl_token_alg {
	RL_TOKEN_HS256 = 0, /* HMAC-SHA256 with a shared secret */
	RL_TOKEN_EDDSA,	    /* Ed25519 */
	RL_TOKEN_NALGS
};

/* The JWS "alg" value of <a>: "HS256", "EdDSA". */
const char *rl_token_alg_name(enum rl_token_alg a);

/* Why a token was refused. On the wire every one of them is fatal
 * UNAUTHORIZED (spec §2); the code is for logs and counters, the message for
 * the ERROR frame. */
enum rl_token_err {
	RL_TOKEN_OK = 0,
	RL_TOKEN_TOO_LONG,	/* more than RL_TOKEN_MAX_BYTES */
	RL_TOKEN_MALFORMED,	/* not three non-empty strict base64url segments */
	RL_TOKEN_BAD_HEADER,	/* header not a JSON object, alg/kid not strings, crit */
	RL_TOKEN_BAD_ALG,	/* none, unsupported, or not the key's algorithm */
	RL_TOKEN_NO_KID,	/* several keys and no kid */
	RL_TOKEN_UNKNOWN_KID,	/* several keys and no key has this kid */
	RL_TOKEN_BAD_SIGNATURE, /* wrong length, or does not verify */
	RL_TOKEN_BAD_CLAIMS,	/* payload not a JSON object */
	RL_TOKEN_BAD_EXP,	/* exp missing, not a number, out of range */
	RL_TOKEN_EXPIRED,	/* now >= exp + leeway */
	RL_TOKEN_BAD_NBF,	/* nbf not a number, out of range */
	RL_TOKEN_NOT_YET_VALID, /* now < nbf - leeway */
	RL_TOKEN_BAD_AUDIENCE,	/* an audience is configured and aud does not name it */
	RL_TOKEN_BAD_SUB,	/* sub missing, not a string, not a valid userId */
	RL_TOKEN_BAD_ROOMS,	/* rooms claim malformed or over the limits */
	RL_TOKEN_INTERNAL,	/* out of memory, OpenSSL failure */
	RL_TOKEN_NERRS
};

/* "ok", "too_long", "malformed", ... (snake case, for logs and metrics
 * labels); "unknown" out of range. Never NULL. */
const char *rl_token_err_name(enum rl_token_err e);

/* ---- key sets (the server side) ------------------------------------------- */

struct rl_token_keys;

/* Loads <n> (1..RL_TOKEN_MAX_KEYS) key specs "[KID=]FILE" into a new set.
 * KID=FILE is read so when the text before the first '=' is non-empty and
 * holds no '/' (write ./a=b for a file named "a=b"); the default KID is the
 * file's base name. A KID is 1-64 printable ASCII bytes, unique in the set.
 * A file starting with "-----BEGIN PUBLIC KEY-----" must hold an Ed25519
 * public key; a file starting with any other "-----BEGIN " is refused (a
 * private key or certificate must never silently become an HMAC secret); any
 * other file is an HS256 secret: its bytes less one trailing "\n", at least
 * RL_TOKEN_SECRET_MIN bytes. Returns 0; or -errno with one line in <err>
 * naming the file and the rule (never the key bytes). */
int rl_token_keys_load(const char *const *specs, size_t n, struct rl_token_keys **out, char *err,
		       size_t errlen);
/* Frees the set; secrets are wiped first. NULL is fine. */
void rl_token_keys_free(struct rl_token_keys *k);
size_t rl_token_keys_count(const struct rl_token_keys *k);
/* The KID and algorithm of key <i> (< count), e.g. for the startup log. */
const char *rl_token_keys_kid(const struct rl_token_keys *k, size_t i);
enum rl_token_alg rl_token_keys_alg(const struct rl_token_keys *k, size_t i);

/* ---- verification ------------------------------------------------------------ */

struct rl_token_policy {
	const char *audience; /* NULL: `aud` is not checked */
	int64_t leeway_ms;    /* on exp and nbf; RL_TOKEN_DEFAULT_LEEWAY_MS */
	int64_t now_ms;	      /* wall clock (CLOCK_REALTIME), ms since the epoch */
};

/* What a valid token grants. */
struct rl_token_claims {
	char sub[RELAY_USERID_MAX_BYTES + 1]; /* the userId, NUL-terminated */
	size_t sub_len;
	int64_t exp_ms;	      /* exp, in ms since the epoch (not counting the leeway) */
	struct rl_perm *perm; /* NULL: no rooms claim, every room; else the caller's,
				 free with rl_perm_free */
	size_t key;	      /* index of the key that verified it */
};

/* Verifies the compact token <tok>/<n> with <keys> under <pol>, in this
 * order: size; three non-empty strict base64url segments (no padding,
 * canonical trailing bits); header a JSON object with a string `alg` (and
 * `kid` a string when present, no `crit`); alg "none" refused; key chosen
 * (see the banner); alg equal to the key's; signature over
 * "header.payload"; then the claims (rl_token_claims_parse).
 * Returns RL_TOKEN_OK and fills <out>; otherwise the rule that failed, with a
 * one-line message in <why> that holds no key material (and *<out>'s perm is
 * NULL). <keys> must not be NULL (no keys: authentication is off, do not
 * call). Nothing allocated here outlives the call except the compiled
 * permissions. */
enum rl_token_err rl_token_verify(const struct rl_token_keys *keys,
				  const struct rl_token_policy *pol, const uint8_t *tok, size_t n,
				  struct rl_token_claims *out, char why[RL_TOKEN_WHY_MAX]);

/* The claims step alone, on a decoded payload <p>/<n> whose signature was
 * verified (exposed for the fuzzer and the tests): a JSON object; `exp`
 * required, a number of seconds (fractions allowed) in [0, 1e13), and
 * now < exp + leeway; `nbf` optional, same range, nbf - leeway <= now; `aud`
 * checked when pol->audience is set (a string equal to it, or an array
 * holding it); `sub` a string that passes relay_userid_check (1-128 bytes);
 * `rooms` optional (rl_perm_compile). Other claims are ignored. */
enum rl_token_err rl_token_claims_parse(const uint8_t *p, size_t n,
					const struct rl_token_policy *pol,
					struct rl_token_claims *out, char why[RL_TOKEN_WHY_MAX]);

/* ---- minting ------------------------------------------------------------------ */

struct rl_token_signer;

/* Loads a signing key from <path>: "-----BEGIN PRIVATE KEY-----" must be an
 * (unencrypted PKCS#8) Ed25519 private key -> EdDSA; any other "-----BEGIN "
 * is refused (a public key cannot sign); anything else is an HS256 secret
 * under the rules of rl_token_keys_load. 0, or -errno with one line in <err>. */
int rl_token_signer_load(const char *path, struct rl_token_signer **out, char *err, size_t errlen);
/* An HS256 signer over <n> raw secret bytes (no length rule: tests use it to
 * forge tokens). 0 or -ENOMEM. */
int rl_token_signer_hs256(const void *secret, size_t n, struct rl_token_signer **out);
enum rl_token_alg rl_token_signer_alg(const struct rl_token_signer *s);
void rl_token_signer_free(struct rl_token_signer *s);

/* Writes base64url(<hdr>).base64url(<payload>).base64url(signature) and a
 * NUL to <out>/<cap>. The header is the caller's: it should say the signer's
 * algorithm (tests write other ones on purpose). Returns the token length,
 * -ENOSPC when <cap> is too small, -EIO when OpenSSL fails. */
long rl_token_sign(const struct rl_token_signer *s, const void *hdr, size_t hn, const void *payload,
		   size_t pn, char *out, size_t cap);

/* ---- base64url (RFC 4648 §5, no padding) ------------------------------------- */

/* Encoded length of <n> bytes. */
size_t rl_b64url_len(size_t n);
/* Encodes <n> bytes at <in> to <out> (rl_b64url_len(n) bytes, no NUL). */
void rl_b64url_encode(const void *in, size_t n, char *out);
/* Decodes <n> characters strictly: alphabet A-Z a-z 0-9 - _ only, no '=',
 * n % 4 != 1, unused trailing bits zero. Returns the decoded length (at most
 * <cap>), or -1 when invalid or it would not fit. */
long rl_b64url_decode(const char *in, size_t n, uint8_t *out, size_t cap);

#endif
