/* Internal to the data port (src/cli/mn_data.c): the requests of one
 * connection (mn_data_conn.c). */
#ifndef DROVER_CLI_MN_DATA_H
#define DROVER_CLI_MN_DATA_H

#include <stdatomic.h>

struct dv__serve_cache;

/* Serve the requests on fd, whose token was checked and greeting sent,
 * until the connection ends or *stopping is set, on the calling thread and
 * on threads made as requests block; returns once all are done. Objects
 * are attached in *cache (the agent's). fd stays the caller's. */
void mn_data_conn_serve(struct dv__serve_cache **cache, _Atomic int *stopping,
                        int fd);

/* The greeting: rc 0, or -1 with errno e and the reason why (a refusal). */
int mn_data_greet(int fd, int rc, int e, const char *why);

#endif
