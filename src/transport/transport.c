/* ZeroMQ + CURVE transport of the control plane (see transport.h).
 *
 * Authentication: every listening socket is a CURVE server with the job's
 * server key, so only peers that know the job's server public key get
 * through the handshake, and the ZAP handler then admits only the job's
 * client public key. The handler runs in the transport's own thread (ZAP
 * requests arrive while the owner may be blocked elsewhere); the same
 * thread reads the socket monitors of the listening sockets to see
 * handshakes that fail before ZAP is asked (wrong server key, no CURVE,
 * garbage bytes). The owner talks to the thread over an inproc pipe. */
#include "transport/transport.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_DOMAIN "drover"
#define ZAP_MAX_FRAMES 8
#define HANDSHAKE_MS 5000
#define TRANSPORT_BACKLOG 4096 /* listen(2) backlog of a listener */
#define MONITOR_EVENTS \
    (ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)

struct dv_transport {
    void *ctx;
    void *pipe; /* owner's end of the pipe to the thread */
    void *zap;  /* handed to the thread at start */
    void *thread_pipe;
    pthread_t thread;
    int thread_started;
    dv_job_keys_t keys;
    uint8_t client_key[32];
    dv_transport_log_f log;
    void *log_arg;
    atomic_uint_fast64_t refused;
    void **sockets;
    size_t nsockets, cap;
    unsigned monitor_seq;
    char last_line[256]; /* log_refusal's rate limit (thread only) */
    time_t last_time;
    unsigned long suppressed;
};

/* Thread side: the pipe, the ZAP socket and the monitors of listeners. */
typedef struct zap_loop {
    dv_transport_t *tp;
    zmq_pollitem_t *items; /* [0] pipe, [1] zap, [2..] monitors */
    size_t n, cap;
    int stop;
} zap_loop_t;

static void log_refusal(dv_transport_t *tp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Count every refusal; log it unless the same line was logged less than a
 * second ago (a peer with a wrong key retries every 100 ms). Runs on the
 * transport's thread only. */
static void log_refusal(dv_transport_t *tp, const char *fmt, ...)
{
    atomic_fetch_add(&tp->refused, 1);
    if (!tp->log)
        return;
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (strcmp(line, tp->last_line) == 0 && now.tv_sec - tp->last_time < 1) {
        tp->suppressed++;
        return;
    }
    if (tp->suppressed) {
        char full[320];
        snprintf(full, sizeof(full), "%s (and %lu more like it)", line,
                 tp->suppressed);
        tp->log(tp->log_arg, full);
    } else {
        tp->log(tp->log_arg, line);
    }
    tp->suppressed = 0;
    tp->last_time = now.tv_sec;
    memcpy(tp->last_line, line, sizeof(line));
}

/* Printable copy of a frame (addresses, mechanism names). */
static void frame_text(zmq_msg_t *m, char *out, size_t n)
{
    size_t len = zmq_msg_size(m);
    const unsigned char *p = zmq_msg_data(m);
    size_t i = 0;
    for (; i < len && i + 1 < n; i++)
        out[i] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '?';
    out[i] = '\0';
}

static void zap_send(void *zap, const char *s, size_t len, int more)
{
    zmq_send(zap, s, len, more ? ZMQ_SNDMORE : 0);
}

/* Decide one ZAP request: frames are version, request id, domain, address,
 * routing id, mechanism, credentials. Always reply, or REP would stall. */
static void zap_handle(dv_transport_t *tp, void *zap)
{
    zmq_msg_t f[ZAP_MAX_FRAMES];
    int n = 0, more = 1;
    while (more) {
        zmq_msg_t tmp;
        zmq_msg_init(&tmp);
        if (zmq_msg_recv(&tmp, zap, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&tmp);
            break;
        }
        more = zmq_msg_more(&tmp);
        if (n < ZAP_MAX_FRAMES)
            f[n++] = tmp;
        else
            zmq_msg_close(&tmp);
    }
    if (n == 0)
        return;
    char addr[64] = "?", mech[16] = "?";
    if (n > 3)
        frame_text(&f[3], addr, sizeof(addr));
    if (n > 5)
        frame_text(&f[5], mech, sizeof(mech));
    int ok = n >= 7 && strcmp(mech, "CURVE") == 0 &&
             zmq_msg_size(&f[6]) == sizeof(tp->client_key) &&
             memcmp(zmq_msg_data(&f[6]), tp->client_key,
                    sizeof(tp->client_key)) == 0;
    zap_send(zap, "1.0", 3, 1);
    if (n > 1)
        zap_send(zap, zmq_msg_data(&f[1]), zmq_msg_size(&f[1]), 1);
    else
        zap_send(zap, "", 0, 1);
    zap_send(zap, ok ? "200" : "400", 3, 1);
    zap_send(zap, ok ? "OK" : "refused", ok ? 2 : 7, 1);
    zap_send(zap, "", 0, 1);
    zap_send(zap, "", 0, 0);
    if (!ok)
        log_refusal(tp, "refused connection from %s: %s", addr,
                    strcmp(mech, "CURVE") ? "not CURVE"
                                          : "unknown CURVE client key");
    for (int i = 0; i < n; i++)
        zmq_msg_close(&f[i]);
}

static const char *protocol_error_text(uint32_t v)
{
    if (v >= ZMQ_PROTOCOL_ERROR_ZMTP_UNSPECIFIED &&
        v <= ZMQ_PROTOCOL_ERROR_ZMTP_INVALID_METADATA)
        return "not a valid ZMTP peer";
    if (v >= ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC &&
        v <= ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
        return v == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH
                   ? "security mechanism is not CURVE"
                   : "CURVE handshake failed (wrong server key?)";
    return "handshake failed";
}

/* One monitor event: frame 1 is u16 event + u32 value, frame 2 the
 * endpoint. Returns 1 when the monitor has stopped (socket closed). */
static int monitor_handle(dv_transport_t *tp, void *mon)
{
    zmq_msg_t ev, ep;
    zmq_msg_init(&ev);
    zmq_msg_init(&ep);
    int stopped = 0;
    if (zmq_msg_recv(&ev, mon, ZMQ_DONTWAIT) < 0)
        goto out;
    if (!zmq_msg_more(&ev) || zmq_msg_recv(&ep, mon, ZMQ_DONTWAIT) < 0 ||
        zmq_msg_size(&ev) != 6)
        goto out;
    const uint8_t *p = zmq_msg_data(&ev);
    uint16_t event;
    uint32_t value;
    memcpy(&event, p, 2);
    memcpy(&value, p + 2, 4);
    char where[96];
    frame_text(&ep, where, sizeof(where));
    if (event == ZMQ_EVENT_MONITOR_STOPPED)
        stopped = 1;
    else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
        log_refusal(tp, "refused connection on %s: %s", where,
                    protocol_error_text(value));
    else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
        log_refusal(tp,
                    "refused connection on %s: handshake failed (not CURVE, "
                    "or not a ZeroMQ peer)",
                    where);
out:
    zmq_msg_close(&ev);
    zmq_msg_close(&ep);
    return stopped;
}

static int loop_add(zap_loop_t *l, void *sock)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        zmq_pollitem_t *p = realloc(l->items, cap * sizeof(*p));
        if (!p)
            return -1;
        l->items = p;
        l->cap = cap;
    }
    l->items[l->n++] = (zmq_pollitem_t){.socket = sock, .events = ZMQ_POLLIN};
    return 0;
}

/* A command from the owner: "M<endpoint>" watch a monitor, "S" stop. */
static void pipe_handle(zap_loop_t *l)
{
    char cmd[128];
    int n = zmq_recv(l->items[0].socket, cmd, sizeof(cmd) - 1, ZMQ_DONTWAIT);
    if (n <= 0)
        return;
    cmd[n < (int)sizeof(cmd) - 1 ? n : (int)sizeof(cmd) - 1] = '\0';
    if (cmd[0] == 'S') {
        l->stop = 1;
        return;
    }
    int ok = 0;
    void *mon = zmq_socket(l->tp->ctx, ZMQ_PAIR);
    if (mon && zmq_connect(mon, cmd + 1) == 0 && loop_add(l, mon) == 0)
        ok = 1;
    else if (mon)
        zmq_close(mon);
    zmq_send(l->items[0].socket, ok ? "ok" : "no", 2, 0);
}

static void *zap_thread(void *arg)
{
    dv_transport_t *tp = arg;
    zap_loop_t l = {.tp = tp};
    if (loop_add(&l, tp->thread_pipe) < 0 || loop_add(&l, tp->zap) < 0)
        l.stop = 1;
    while (!l.stop) {
        if (zmq_poll(l.items, (int)l.n, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (l.items[0].revents & ZMQ_POLLIN)
            pipe_handle(&l);
        if (l.items[1].revents & ZMQ_POLLIN)
            zap_handle(tp, l.items[1].socket);
        for (size_t i = 2; i < l.n; i++) {
            if (!(l.items[i].revents & ZMQ_POLLIN) ||
                !monitor_handle(tp, l.items[i].socket))
                continue;
            zmq_close(l.items[i].socket);
            l.items[i--] = l.items[--l.n];
        }
    }
    for (size_t i = 2; i < l.n; i++)
        zmq_close(l.items[i].socket);
    zmq_close(tp->zap);
    zmq_close(tp->thread_pipe);
    free(l.items);
    return NULL;
}

static int start_thread(dv_transport_t *tp, dv_error_t *err)
{
    char ep[64];
    snprintf(ep, sizeof(ep), "inproc://dv-transport-pipe-%p", (void *)tp);
    int linger = 0;
    tp->zap = zmq_socket(tp->ctx, ZMQ_REP);
    tp->pipe = zmq_socket(tp->ctx, ZMQ_PAIR);
    tp->thread_pipe = zmq_socket(tp->ctx, ZMQ_PAIR);
    if (!tp->zap || !tp->pipe || !tp->thread_pipe)
        return dv__errsys(err, "transport: zmq_socket");
    zmq_setsockopt(tp->zap, ZMQ_LINGER, &linger, sizeof(linger));
    if (zmq_bind(tp->zap, ZAP_ENDPOINT) != 0)
        return dv__errsys(err, "transport: ZAP handler bind");
    if (zmq_bind(tp->thread_pipe, ep) != 0 || zmq_connect(tp->pipe, ep) != 0)
        return dv__errsys(err, "transport: pipe");
    int rc = pthread_create(&tp->thread, NULL, zap_thread, tp);
    if (rc != 0)
        return dv__errprintf(err, rc, "transport: pthread_create: %s",
                             strerror(rc));
    tp->thread_started = 1;
    return 0;
}

dv_transport_t *dv__transport_create(const dv_job_keys_t *keys,
                                     dv_transport_log_f log, void *log_arg,
                                     dv_error_t *err)
{
    dv_transport_t *tp = calloc(1, sizeof(*tp));
    if (!tp) {
        dv__errprintf(err, ENOMEM, "transport: out of memory");
        return NULL;
    }
    tp->keys = *keys;
    tp->log = log;
    tp->log_arg = log_arg;
    atomic_init(&tp->refused, 0);
    if (!zmq_z85_decode(tp->client_key, tp->keys.client_public)) {
        dv__errprintf(err, EINVAL, "transport: malformed client key");
        goto error;
    }
    tp->ctx = zmq_ctx_new();
    if (!tp->ctx) {
        dv__errsys(err, "transport: zmq_ctx_new");
        goto error;
    }
    if (start_thread(tp, err) < 0)
        goto error;
    return tp;
error:
    dv__transport_destroy(&tp);
    return NULL;
}

static void close_socket(void *s)
{
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_close(s);
}

void dv__transport_destroy(dv_transport_t **tpp)
{
    if (!tpp || !*tpp)
        return;
    int saved = errno;
    dv_transport_t *tp = *tpp;
    for (size_t i = 0; i < tp->nsockets; i++)
        close_socket(tp->sockets[i]);
    if (tp->thread_started) {
        zmq_send(tp->pipe, "S", 1, 0);
        pthread_join(tp->thread, NULL);
    } else {
        if (tp->zap)
            close_socket(tp->zap);
        if (tp->thread_pipe)
            close_socket(tp->thread_pipe);
    }
    if (tp->pipe)
        close_socket(tp->pipe);
    if (tp->ctx)
        zmq_ctx_term(tp->ctx);
    free(tp->sockets);
    dv__keys_wipe(&tp->keys);
    free(tp);
    *tpp = NULL;
    errno = saved;
}

static int track(dv_transport_t *tp, void *s)
{
    if (tp->nsockets == tp->cap) {
        size_t cap = tp->cap ? tp->cap * 2 : 8;
        void **p = realloc(tp->sockets, cap * sizeof(*p));
        if (!p)
            return -1;
        tp->sockets = p;
        tp->cap = cap;
    }
    tp->sockets[tp->nsockets++] = s;
    return 0;
}

/* A socket with the options every transport socket has, tracked. */
static void *new_socket(dv_transport_t *tp, int type, dv_error_t *err)
{
    void *s = zmq_socket(tp->ctx, type);
    if (!s) {
        dv__errsys(err, "transport: zmq_socket");
        return NULL;
    }
    int linger = 0, hs = HANDSHAKE_MS;
    int64_t max = DV_WIRE_HEADER_SIZE + (int64_t)DV_WIRE_MAX_BODY;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_setsockopt(s, ZMQ_HANDSHAKE_IVL, &hs, sizeof(hs));
    zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &max, sizeof(max));
    if (track(tp, s) < 0) {
        zmq_close(s);
        dv__errprintf(err, ENOMEM, "transport: out of memory");
        return NULL;
    }
    return s;
}

/* Watch a listener's failed handshakes from the thread; waits until the
 * thread has connected, so no event is lost. */
static int watch(dv_transport_t *tp, void *s, dv_error_t *err)
{
    char cmd[80], ack[2];
    snprintf(cmd, sizeof(cmd), "Minproc://dv-transport-mon-%p-%u", (void *)tp,
             tp->monitor_seq++);
    if (zmq_socket_monitor(s, cmd + 1, MONITOR_EVENTS) != 0)
        return dv__errsys(err, "transport: zmq_socket_monitor");
    if (zmq_send(tp->pipe, cmd, strlen(cmd), 0) < 0 ||
        zmq_recv(tp->pipe, ack, sizeof(ack), 0) != 2)
        return dv__errsys(err, "transport: monitor");
    if (memcmp(ack, "ok", 2) != 0)
        return dv__errprintf(err, EIO, "transport: monitor not connected");
    return 0;
}

void *dv__transport_listen(dv_transport_t *tp, const char *endpoint,
                           char *bound, size_t bound_len, dv_error_t *err)
{
    void *s = new_socket(tp, ZMQ_ROUTER, err);
    if (!s)
        return NULL;
    /* ZeroMQ's default backlog is 100: a burst of connects beyond it (a
     * tree level of agents starting at once) has its SYNs dropped and
     * retried after TCP's 1 s. The kernel caps it at somaxconn. */
    int one = 1, backlog = TRANSPORT_BACKLOG;
    if (zmq_setsockopt(s, ZMQ_CURVE_SERVER, &one, sizeof(one)) != 0 ||
        zmq_setsockopt(s, ZMQ_BACKLOG, &backlog, sizeof(backlog)) != 0 ||
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, tp->keys.server_secret,
                       DV_KEY_TEXT) != 0 ||
        zmq_setsockopt(s, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN, strlen(ZAP_DOMAIN)) ||
        zmq_setsockopt(s, ZMQ_ROUTER_MANDATORY, &one, sizeof(one)) != 0) {
        dv__errsys(err, "transport: CURVE server options");
        goto error;
    }
    if (watch(tp, s, err) < 0)
        goto error;
    if (zmq_bind(s, endpoint) != 0) {
        dv__errsys(err, "transport: bind %s", endpoint);
        goto error;
    }
    if (bound && bound_len) {
        size_t n = bound_len;
        if (zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, bound, &n) != 0)
            bound[0] = '\0';
    }
    return s;
error:
    dv__transport_close(tp, &s);
    return NULL;
}

void *dv__transport_connect(dv_transport_t *tp, const char *endpoint,
                            dv_error_t *err)
{
    void *s = new_socket(tp, ZMQ_DEALER, err);
    if (!s)
        return NULL;
    if (zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, tp->keys.server_public,
                       DV_KEY_TEXT) != 0 ||
        zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, tp->keys.client_public,
                       DV_KEY_TEXT) != 0 ||
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, tp->keys.client_secret,
                       DV_KEY_TEXT) != 0) {
        dv__errsys(err, "transport: CURVE client options");
        goto error;
    }
    if (zmq_connect(s, endpoint) != 0) {
        dv__errsys(err, "transport: connect %s", endpoint);
        goto error;
    }
    return s;
error:
    dv__transport_close(tp, &s);
    return NULL;
}

void dv__transport_close(dv_transport_t *tp, void **sock)
{
    if (!sock || !*sock)
        return;
    for (size_t i = 0; i < tp->nsockets; i++) {
        if (tp->sockets[i] == *sock) {
            tp->sockets[i] = tp->sockets[--tp->nsockets];
            break;
        }
    }
    close_socket(*sock);
    *sock = NULL;
}

void *dv__transport_context(dv_transport_t *tp)
{
    return tp->ctx;
}

uint64_t dv__transport_refused(dv_transport_t *tp)
{
    return atomic_load(&tp->refused);
}

static void free_buffer(void *data, void *hint)
{
    (void)hint;
    free(data);
}

int dv__transport_send(void *sock, const uint8_t *peer, size_t peer_len,
                       dv_wire_buf_t *b, dv_error_t *err)
{
    size_t len;
    uint8_t *data = dv__wire_buf_take(b, &len);
    if (!data)
        return dv__errprintf(err, EINVAL, "transport: empty message");
    zmq_msg_t m;
    if (zmq_msg_init_data(&m, data, len, free_buffer, NULL) != 0) {
        free(data);
        return dv__errsys(err, "transport: zmq_msg_init_data");
    }
    if (peer && zmq_send(sock, peer, peer_len, ZMQ_SNDMORE) < 0) {
        zmq_msg_close(&m);
        return dv__errsys(err, "transport: send");
    }
    if (zmq_msg_send(&m, sock, 0) < 0) {
        zmq_msg_close(&m);
        return dv__errsys(err, "transport: send");
    }
    return 0;
}

/* Read and drop the rest of a multi-part message. */
static void drain(void *sock)
{
    int more = 1;
    size_t n = sizeof(more);
    while (zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &n) == 0 && more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        int rc = zmq_msg_recv(&m, sock, ZMQ_DONTWAIT);
        zmq_msg_close(&m);
        if (rc < 0)
            break;
        n = sizeof(more);
    }
}

static int recv_peer(void *sock, dv_transport_msg_t *m, dv_error_t *err)
{
    int n = zmq_recv(sock, m->peer, sizeof(m->peer), ZMQ_DONTWAIT);
    if (n < 0)
        return dv__errsys(err, "transport: recv");
    int more = 0;
    size_t sz = sizeof(more);
    zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &sz);
    if (!more || (size_t)n > sizeof(m->peer))
        return dv__errprintf(err, EPROTO, "transport: message without body");
    m->peer_len = (size_t)n;
    return 0;
}

int dv__transport_recv(void *sock, dv_transport_msg_t *m, int timeout_ms,
                       dv_error_t *err)
{
    m->open = 0;
    m->peer_len = 0;
    zmq_pollitem_t it = {.socket = sock, .events = ZMQ_POLLIN};
    int rc = zmq_poll(&it, 1, timeout_ms);
    if (rc < 0)
        return dv__errsys(err, "transport: poll");
    if (rc == 0)
        return dv__errprintf(err, EAGAIN, "transport: nothing received");
    int type = 0;
    size_t sz = sizeof(type);
    zmq_getsockopt(sock, ZMQ_TYPE, &type, &sz);
    if (type == ZMQ_ROUTER && recv_peer(sock, m, err) < 0) {
        int e = errno;
        drain(sock);
        errno = e;
        return -1;
    }
    zmq_msg_init(&m->body);
    m->open = 1;
    if (zmq_msg_recv(&m->body, sock, ZMQ_DONTWAIT) < 0) {
        int e = errno;
        dv__transport_msg_close(m);
        errno = e;
        return dv__errsys(err, "transport: recv");
    }
    if (zmq_msg_more(&m->body)) {
        drain(sock);
        dv__transport_msg_close(m);
        return dv__errprintf(err, EPROTO, "transport: multi-part message");
    }
    if (dv__wire_decode(zmq_msg_data(&m->body), zmq_msg_size(&m->body),
                        &m->view, err) < 0) {
        dv__transport_msg_close(m);
        errno = EPROTO;
        return -1;
    }
    return 0;
}

void dv__transport_msg_close(dv_transport_msg_t *m)
{
    if (!m || !m->open)
        return;
    zmq_msg_close(&m->body);
    m->open = 0;
}
