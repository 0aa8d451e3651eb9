/* bus.c -- the installed cluster bus hooks. Threading: see bus.h. */
#include "relay/bus.h"

const struct rl_bus_hooks *rl_bus;

void rl_bus_set(const struct rl_bus_hooks *h)
{
	rl_bus = h;
}
