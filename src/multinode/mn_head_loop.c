/* The head's loop while a multi-node job runs (a thread of `drover run`
 * beside the supervision of the main process): routes messages between
 * nodes, serves node 0's processes, prints other nodes' output, sends and
 * checks heartbeats, and at the end tells every agent to tear its node
 * down and waits (bounded) for them to go. */
#define _GNU_SOURCE
#include "multinode/mn_head.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/error.h"
#include "lib/runtime.h"

/* Forward a message not meant for node 0, as it came. */
static void forward(mn_head_t *h, dv_transport_msg_t *m, int dst)
{
    size_t len = zmq_msg_size(&m->body);
    dv_wire_buf_t b = {malloc(len), len, len, 0};
    if (!b.data)
        return;
    memcpy(b.data, zmq_msg_data(&m->body), len);
    send_to(h, dst, &b);
}

/* Agent p's child c (in the tree) is gone: its launch ended. */
static void on_tree_lost(mn_head_t *h, int p, const dv_wire_view_t *v)
{
    int c = (int)mn_get_i64(v, MN_INDEX, -1);
    char text[200] = "", why[300];
    dv__wire_get_str(v, MN_TEXT, text, sizeof(text), NULL);
    if (c <= 0 || c >= h->n || mn_tree_parent(c, h->k) != p || h->nd[c].dead)
        return;
    snprintf(why, sizeof(why), "agent exited%s%s", text[0] ? ": " : "", text);
    h->nd[c].gone = 1;
    node_failed(h, c, why);
}

static void on_router(mn_head_t *h)
{
    dv_transport_msg_t m;
    for (int k = 0; k < 256; k++) {
        if (dv__transport_recv(h->router, &m, 0, NULL) < 0)
            return;
        int from = node_of(h, &m); /* MN_SRC, checked against the peer */
        int dst = (int)mn_get_i64(&m.view, MN_DST, -1);
        if (from > 0 && !h->nd[from].dead) {
            h->nd[from].seen = mn_now();
            if (m.view.type == DV_WIRE_TREE_LOST)
                on_tree_lost(h, from, &m.view);
            else if (dst == 0)
                on_local(h, &m.view);
            else if (dst > 0 && dst < h->n)
                forward(h, &m, dst);
        }
        dv__transport_msg_close(&m);
    }
}

static void on_reaped_pipe(mn_head_t *h)
{
    int rec[2];
    while (read(h->reap[0], rec, sizeof(rec)) == sizeof(rec))
        mn_svc_reaped(h->svc, (pid_t)rec[0], rec[1]);
}

static void beat(mn_head_t *h)
{
    double now = mn_now();
    if (h->teardown_at && now >= h->teardown_at) {
        h->teardown_at = -1;
        kill(getpid(), SIGTERM); /* the supervision tears the job down */
    }
    if (now < h->next_beat)
        return;
    h->next_beat = now + MN_HEARTBEAT_S;
    for (int i = 1; i < h->n; i++) {
        struct node *d = &h->nd[i];
        if (d->dead)
            continue;
        if (now - d->seen > MN_DEAD_S) {
            char why[96];
            snprintf(why, sizeof(why),
                     "agent stopped answering (no heartbeat for %g s)",
                     MN_DEAD_S);
            node_failed(h, i, why);
            continue;
        }
        send_simple(h, i, DV_WIRE_HEARTBEAT, 0);
    }
}

/* A launcher's stderr: the agent's own messages; EOF: the agent is gone. */
static void on_launcher(mn_head_t *h, int i, int stopping)
{
    struct node *d = &h->nd[i];
    if (!read_launcher(h, d, 1))
        return;
    close(d->ch.err_fd);
    d->ch.err_fd = -1;
    d->gone = 1;
    if (stopping || !h->hosts)
        return;
    char why[300];
    snprintf(why, sizeof(why), "agent exited%s%s", d->lasterr[0] ? ": " : "",
             d->lasterr);
    node_failed(h, i, why);
}

void mn_head_local_output(mn_head_t *h, int out_fd, int err_fd)
{
    h->local_out[1] = out_fd;
    h->local_out[2] = err_fd;
    fcntl(out_fd, F_SETFL, O_NONBLOCK);
    fcntl(err_fd, F_SETFL, O_NONBLOCK);
}

/* Node 0's processes said something (stream 1 or 2): read within node 0's
 * credit, or (all: the job is over) everything. */
static void on_local_output(mn_head_t *h, int stream, int all)
{
    char buf[65536];
    for (;;) {
        size_t room = all ? sizeof(buf) : h->credit - h->local_unacked;
        if (!room)
            return;
        ssize_t k = read(h->local_out[stream], buf,
                         room < sizeof(buf) ? room : sizeof(buf));
        if (k > 0) {
            h->local_unacked += all ? 0 : (size_t)k;
            put_output(h, 0, stream, buf, (size_t)k, 0);
            continue;
        }
        if (k == 0 || (errno != EAGAIN && errno != EINTR)) {
            close(h->local_out[stream]);
            h->local_out[stream] = -1;
        }
        return;
    }
}

static void send_ack(mn_head_t *h, int dst, uint64_t bytes)
{
    dv_wire_buf_t b;
    if (mn_msg_begin(&b, DV_WIRE_OUTPUT_ACK, 0, dst) < 0)
        return;
    dv__wire_put_u64(&b, MN_VALUE, bytes);
    if (dv__wire_end(&b, NULL) == 0)
        send_to(h, dst, &b);
    dv__wire_buf_release(&b);
}

/* The writer wrote some nodes' output: their credit goes back. */
static void on_written(mn_head_t *h)
{
    mn_out_acks(h->out, h->acked);
    uint64_t own = h->acked[0];
    h->local_unacked -= own < h->local_unacked ? own : h->local_unacked;
    h->acked[0] = 0;
    for (int i = 1; i < h->n; i++)
        if (h->acked[i]) {
            if (!h->nd[i].dead)
                send_ack(h, i, h->acked[i]);
            h->acked[i] = 0;
        }
}

/* One round of the loop. Returns 1 when asked to stop. */
static int loop_once(mn_head_t *h, int stopping, int timeout_ms)
{
    zmq_pollitem_t *it = h->items;
    int *map = h->map, ni = 0, first, end;
    mn_tree_children(0, h->k, h->n, &first, &end);
    it[ni++] = (zmq_pollitem_t){h->router, 0, ZMQ_POLLIN, 0};
    it[ni++] = (zmq_pollitem_t){NULL, h->stop[0], ZMQ_POLLIN, 0};
    it[ni++] = (zmq_pollitem_t){NULL, h->reap[0], ZMQ_POLLIN, 0};
    it[ni++] = (zmq_pollitem_t){NULL, mn_out_fd(h->out), ZMQ_POLLIN, 0};
    int first_launch = ni;
    for (int i = first; i < end; i++) /* the launches of its children */
        if (h->nd[i].ch.err_fd >= 0) {
            map[ni] = i;
            it[ni++] =
                (zmq_pollitem_t){NULL, h->nd[i].ch.err_fd, ZMQ_POLLIN, 0};
        }
    int first_local = ni;
    for (int s = 1; s <= 2; s++)
        if (h->local_out[s] >= 0 && h->local_unacked < h->credit) {
            map[ni] = s;
            it[ni++] = (zmq_pollitem_t){NULL, h->local_out[s], ZMQ_POLLIN, 0};
        }
    int first_svc = ni;
    ni += mn_svc_poll_items(h->svc, it + ni, h->items_cap - ni);
    if (zmq_poll(it, ni, timeout_ms) < 0)
        return 0;
    if (it[0].revents || h->router)
        on_router(h);
    if (it[2].revents)
        on_reaped_pipe(h);
    if (it[3].revents)
        on_written(h);
    for (int j = first_launch; j < first_local; j++)
        if (it[j].revents)
            on_launcher(h, map[j], stopping);
    for (int j = first_local; j < first_svc; j++)
        if (it[j].revents && h->local_out[map[j]] >= 0)
            on_local_output(h, map[j], 0);
    mn_svc_on_poll(h->svc, it + first_svc, ni - first_svc);
    if (!stopping)
        beat(h);
    return it[1].revents != 0;
}

static int agents_left(mn_head_t *h)
{
    int k = 0;
    for (int i = 1; i < h->n; i++)
        k += h->nd[i].ch.err_fd >= 0 && !h->nd[i].dead;
    return k;
}

static void *head_thread(void *arg)
{
    mn_head_t *h = arg;
    while (!loop_once(h, 0, 200))
        ;
    head_broadcast(h, DV_WIRE_KILL, -1, 1); /* down the tree */
    for (int i = 1; i < h->n; i++)
        if (h->nd[i].dead && h->nd[i].ch.pid > 0 && !h->nd[i].gone)
            kill(h->nd[i].ch.pid, SIGKILL); /* its launcher (ssh, nsenter) */
    double end = mn_now() + dv__grace_s() + 3;
    while (agents_left(h) && mn_now() < end)
        loop_once(h, 1, 50);
    for (int i = 1; i < h->n; i++)
        for (int s = 1; s <= 2; s++)
            put_output(h, i, s, "", 0, 1);
    return NULL;
}

int mn_head_run(mn_head_t *h)
{
    h->next_beat = mn_now();
    h->credit = mn_out_credit(h->n);
    mn_out_t *o = NULL;
    int first, end;
    mn_tree_children(0, h->k, h->n, &first, &end);
    h->items_cap = 4 + (end - first) + 2 + 512; /* + node 0's service */
    h->items = calloc((size_t)h->items_cap, sizeof(*h->items));
    h->map = calloc((size_t)h->items_cap, sizeof(*h->map));
    if (!h->items || !h->map ||
        !(h->acked = calloc((size_t)h->n, sizeof(*h->acked))) ||
        !(o = mn_out_create(h->n, NULL)))
        return -1;
    pthread_mutex_lock(&h->log_mu);
    h->out = o;
    pthread_mutex_unlock(&h->log_mu);
    if (pthread_create(&h->th, NULL, head_thread, h) != 0) {
        pthread_mutex_lock(&h->log_mu);
        h->out = NULL;
        pthread_mutex_unlock(&h->log_mu);
        mn_out_destroy(&o);
        return -1;
    }
    h->running = 1;
    return 0;
}

void mn_head_reaped(void *arg, pid_t pid, int status)
{
    mn_head_t *h = arg;
    int rec[2] = {(int)pid, status};
    if (write(h->reap[1], rec, sizeof(rec)) < 0)
        return;
}

void mn_head_before_teardown(void *arg)
{
    mn_head_t *h = arg;
    if (!h->running)
        return;
    char c = 1;
    if (write(h->stop[1], &c, 1) < 0)
        return;
    pthread_join(h->th, NULL);
    h->running = 0;
}

int mn_head_finish(mn_head_t **hp)
{
    mn_head_t *h = *hp;
    if (!h)
        return 0;
    *hp = NULL;
    mn_head_before_teardown(h);
    int failed = h->failed;
    for (int s = 1; s <= 2; s++) {
        if (h->local_out[s] >= 0)
            on_local_output(h, s, 1); /* what the job left in the pipe */
        if (h->local_out[s] >= 0)
            close(h->local_out[s]);
        if (h->nd)
            put_output(h, 0, s, "", 0, 1);
    }
    /* Every byte the job wrote goes out, however long the reader takes. */
    pthread_mutex_lock(&h->log_mu);
    mn_out_t *o = h->out;
    h->out = NULL;
    pthread_mutex_unlock(&h->log_mu);
    uint64_t lost = mn_out_destroy(&o);
    if (lost)
        fprintf(stderr,
                "drover: run: %llu bytes of output could not be "
                "written\n",
                (unsigned long long)lost);
    free(h->acked);
    free(h->items);
    free(h->map);
    free(h->names);
    mn_data_stop(&h->data);
    if (h->dfd >= 0)
        close(h->dfd);
    memset(h->token, 0, sizeof(h->token));
    mn_svc_destroy(&h->svc);
    for (int i = 0; h->nd && i < h->n; i++)
        if (h->nd[i].ch.err_fd >= 0)
            close(h->nd[i].ch.err_fd);
    if (h->router)
        dv__transport_close(h->tp, &h->router);
    dv__transport_destroy(&h->tp);
    dv__keys_wipe(&h->keys);
    for (int i = 0; i < 2; i++) {
        if (h->stop[i] >= 0)
            close(h->stop[i]);
        if (h->reap[i] >= 0)
            close(h->reap[i]);
    }
    dv_hostlist_t l = {h->hosts, h->n, h->cpus};
    if (h->hosts)
        dv__hostlist_free(&l);
    else
        free(h->cpus);
    free(h->nd);
    pthread_mutex_destroy(&h->log_mu);
    free(h);
    return failed;
}
