/* A stand-in for `drover agent` that reports another drover version: it
 * takes the job's keys on stdin like the real agent, connects to the head
 * and says hello as "0.0.0-other", then waits to be told off. The multi-node
 * test starts it through the launch template to check that `drover run`
 * names both versions and tears the job down.
 * Usage: mn_fake_agent agent --head EP --job ID --index I */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "multinode/mn.h"
#include "transport/transport.h"

int main(int argc, char **argv)
{
    const char *head = NULL;
    long index = -1;
    for (int i = 1; i + 1 < argc; i++) {
        if (!strcmp(argv[i], "--head"))
            head = argv[i + 1];
        else if (!strcmp(argv[i], "--index"))
            index = atol(argv[i + 1]);
    }
    dv_job_keys_t keys;
    dv_error_t err;
    if (!head || index < 1 || dv__keys_read_fd(0, &keys, &err) < 0) {
        fprintf(stderr, "fake agent: bad arguments or keys\n");
        return 2;
    }
    dv_transport_t *tp = dv__transport_create(&keys, NULL, NULL, &err);
    void *s = tp ? dv__transport_connect(tp, head, &err) : NULL;
    dv_wire_buf_t b = {0};
    char host[64] = "";
    gethostname(host, sizeof(host) - 1);
    if (!s || dv__wire_begin(&b, DV_WIRE_HELLO, 0, 128, &err) < 0)
        return 1;
    dv__wire_put_u64(&b, MN_SRC, (uint64_t)index);
    dv__wire_put_u64(&b, MN_DST, 0);
    dv__wire_put_u64(&b, MN_INDEX, (uint64_t)index);
    dv__wire_put_str(&b, MN_HOST, host);
    dv__wire_put_str(&b, MN_VERSION, "0.0.0-other");
    if (dv__wire_end(&b, &err) < 0 ||
        dv__transport_send(s, NULL, 0, &b, &err) < 0)
        return 1;
    sleep(20); /* until drover run ends it */
    dv__transport_destroy(&tp);
    return 0;
}
