/* relay-expo-check -- checks a Prometheus text exposition on stdin
 * (e.g. curl -s 127.0.0.1:8222/metrics | relay-expo-check). Exit 0 when
 * valid ("ok: N samples"), 1 with "line N: reason" otherwise. */
#include <stdio.h>
#include <stdlib.h>

#include "expo_check.h"

int main(void)
{
	size_t cap = 1 << 16, len = 0, n;
	char *buf = malloc(cap);
	while (buf && (n = fread(buf + len, 1, cap - len, stdin)) > 0) {
		len += n;
		if (len == cap) {
			char *more = realloc(buf, cap *= 2);
			if (!more) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = more;
		}
	}
	if (!buf) {
		fprintf(stderr, "relay-expo-check: out of memory\n");
		return 1;
	}
	char err[256];
	size_t samples = 0;
	int rc = expo_check(buf, len, &samples, err, sizeof(err));
	free(buf);
	if (rc != 0) {
		fprintf(stderr, "relay-expo-check: %s\n", err);
		return 1;
	}
	printf("ok: %zu samples\n", samples);
	return 0;
}
