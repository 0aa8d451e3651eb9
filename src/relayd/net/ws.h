/* ws.h -- the WebSocket listener (protocol-v1-ext.md §1, §7): its settings
 * and its transport (ws.c). The transport table itself is declared in
 * transport.h with the others (rl_ws_transport: WebSocket over plain TCP).
 * Threading: rl_ws_init / rl_ws_fini on the main thread, before the workers
 * start and after they stopped; what they set is read-only in between. */
#ifndef RL_WS_H
#define RL_WS_H

#include "base/options.h"

#include <stdbool.h>
#include <stddef.h>

/* Reads the WebSocket options of <cfg>: the origin allow-list
 * (--ws-allowed-origins) and the static file root (--web-root). 0, or
 * -errno with a one-line reason naming the option in <err>. */
int rl_ws_init(const struct rl_config *cfg, char *err, size_t errlen);
void rl_ws_fini(void);
/* Whether --web-root serves files (for the start-up line). */
bool rl_ws_serves_files(void);

#endif
