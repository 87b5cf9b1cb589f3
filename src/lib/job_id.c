/* The job identifier that names every shared object of a job. */
#include "lib/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char job_id[64];

static int valid_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof(job_id))
        return 0;
    for (const char *p = s; *p; p++) {
        if (!(*p == '-' || *p == '_' || (*p >= '0' && *p <= '9') ||
              (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
            return 0;
    }
    return 1;
}

const char *dv__job_id(void)
{
    if (job_id[0])
        return job_id;
    const char *env = getenv("DROVER_JOB_ID");
    if (env && valid_id(env)) {
        snprintf(job_id, sizeof(job_id), "%s", env);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(job_id, sizeof(job_id), "p%ld-%lx", (long)getpid(),
                 (unsigned long)(ts.tv_sec ^ ts.tv_nsec));
    }
    return job_id;
}

const char *dv__job_node_id(void)
{
    static char id[96];
    if (id[0])
        return id;
    const char *idx = getenv("DROVER_NODE_INDEX");
    char *end;
    long k = idx ? strtol(idx, &end, 10) : 0;
    if (idx && *idx && !*end && k > 0 && k < 1 << 16)
        snprintf(id, sizeof(id), "%s-n%ld", dv__job_id(), k);
    else
        snprintf(id, sizeof(id), "%s", dv__job_id());
    return id;
}

int dv__shm_name(char *buf, size_t cap, const char *rest)
{
    int n = snprintf(buf, cap, "/drover.%s.%s", dv__job_node_id(), rest);
    if (n < 0 || (size_t)n >= cap) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}
