/* The CURVE transport on loopback: an authenticated round trip; peers
 * without the job's keys (another client key, another server key, no
 * CURVE at all) get nothing, change nothing, and are logged as refused;
 * garbage bytes on the port and undecodable frames from an authenticated
 * peer never stop the server from answering the next real request. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "transport/transport.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_text[8192];

static void collect(void *arg, const char *line)
{
    (void)arg;
    pthread_mutex_lock(&log_lock);
    size_t n = strlen(log_text);
    snprintf(log_text + n, sizeof(log_text) - n, "%s\n", line);
    pthread_mutex_unlock(&log_lock);
}

static int logged(const char *what)
{
    pthread_mutex_lock(&log_lock);
    int found = strstr(log_text, what) != NULL;
    pthread_mutex_unlock(&log_lock);
    return found;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Wait up to 3 s for the refusal count to exceed before and the log to
 * hold what. */
static int wait_refused(dv_transport_t *tp, uint64_t before, const char *what)
{
    for (int i = 0; i < 300; i++) {
        if (dv__transport_refused(tp) > before && logged(what))
            return 1;
        sleep_ms(10);
    }
    fprintf(stderr, "log so far:\n%s", log_text);
    return 0;
}

static void send_ping(void *sock, const uint8_t *peer, size_t peer_len,
                      uint16_t type, uint64_t id, const char *text)
{
    dv_wire_buf_t b = {0};
    CHECK(dv__wire_begin(&b, type, id, 0, NULL) == 0);
    dv__wire_put_str(&b, 1, text);
    CHECK(dv__wire_end(&b, NULL) == 0);
    CHECK(dv__transport_send(sock, peer, peer_len, &b, NULL) == 0);
    CHECK(b.data == NULL);
}

/* Client pings, server answers: both sides see what the other sent. */
static void round_trip(void *server, void *client, uint64_t id)
{
    dv_transport_msg_t m;
    dv_error_t err = {{0}};
    char text[32];
    send_ping(client, NULL, 0, DV_WIRE_PING, id, "ping");
    CHECK(dv__transport_recv(server, &m, 5000, &err) == 0);
    if (!m.open) {
        fprintf(stderr, "server recv: %s\n", err.text);
        return;
    }
    CHECK_EQ_INT(m.view.type, DV_WIRE_PING);
    CHECK_EQ_INT(m.view.id, id);
    CHECK(dv__wire_get_str(&m.view, 1, text, sizeof(text), NULL) == 0);
    CHECK(strcmp(text, "ping") == 0);
    send_ping(server, m.peer, m.peer_len, DV_WIRE_PONG, id, "pong");
    dv__transport_msg_close(&m);
    dv__transport_msg_close(&m);
    CHECK(dv__transport_recv(client, &m, 5000, &err) == 0);
    CHECK_EQ_INT(m.view.type, DV_WIRE_PONG);
    CHECK_EQ_INT(m.view.id, id);
    dv__transport_msg_close(&m);
}

/* A client with intruder keys sends a ping: nothing arrives either way. */
static void intruder(const dv_job_keys_t *keys, void *server,
                     const char *endpoint)
{
    dv_transport_t *tp = dv__transport_create(keys, NULL, NULL, NULL);
    CHECK(tp != NULL);
    void *s = dv__transport_connect(tp, endpoint, NULL);
    CHECK(s != NULL);
    send_ping(s, NULL, 0, DV_WIRE_KILL, 99, "kill everything");
    dv_transport_msg_t m;
    CHECK(dv__transport_recv(server, &m, 500, NULL) == -1 && errno == EAGAIN);
    CHECK(dv__transport_recv(s, &m, 100, NULL) == -1 && errno == EAGAIN);
    dv__transport_destroy(&tp);
    CHECK(tp == NULL);
}

/* A ZeroMQ peer with no security at all. */
static void plain_peer(void *server, const char *endpoint)
{
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    CHECK(zmq_connect(s, endpoint) == 0);
    zmq_send(s, "hello", 5, ZMQ_DONTWAIT);
    dv_transport_msg_t m;
    CHECK(dv__transport_recv(server, &m, 500, NULL) == -1 && errno == EAGAIN);
    zmq_close(s);
    zmq_ctx_term(ctx);
}

static int port_of(const char *endpoint)
{
    const char *colon = strrchr(endpoint, ':');
    return colon ? atoi(colon + 1) : 0;
}

/* Raw TCP connections that write junk, or a ZMTP greeting then junk. */
static void garbage(int port)
{
    uint8_t greeting[64] = {0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0};
    memcpy(greeting + 12, "CURVE", 5);
    uint8_t junk[4096];
    srand(77);
    for (int round = 0; round < 40; round++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        CHECK(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
        for (size_t i = 0; i < sizeof(junk); i++)
            junk[i] = (uint8_t)rand();
        if (round % 2)
            CHECK(send(fd, greeting, sizeof(greeting), MSG_NOSIGNAL) > 0);
        if (round % 4 == 3)
            junk[0] = 0x04, junk[1] = 0xff; /* a command frame, huge */
        send(fd, junk, (size_t)(1 + rand() % (int)sizeof(junk)), MSG_NOSIGNAL);
        close(fd);
    }
}

/* An authenticated peer sending frames that are not wire messages. */
static void bad_frames(void *server, void *client)
{
    dv_transport_msg_t m;
    dv_error_t err = {{0}};
    CHECK(zmq_send(client, "not a message", 13, 0) == 13);
    CHECK(dv__transport_recv(server, &m, 5000, &err) == -1 && errno == EPROTO);
    CHECK(strstr(err.text, "wire:") != NULL);
    CHECK(zmq_send(client, "a", 1, ZMQ_SNDMORE) == 1);
    CHECK(zmq_send(client, "b", 1, 0) == 1);
    CHECK(dv__transport_recv(server, &m, 5000, &err) == -1 && errno == EPROTO);
    CHECK(!m.open);
}

int main(void)
{
    dv_job_keys_t keys, other, stranger;
    char endpoint[128];
    CHECK(dv__keys_generate(&keys, NULL) == 0);
    CHECK(dv__keys_generate(&stranger, NULL) == 0);
    other = keys; /* knows the server key, not the client secret */
    memcpy(other.client_public, stranger.client_public, DV_KEY_TEXT);
    memcpy(other.client_secret, stranger.client_secret, DV_KEY_TEXT);

    dv_error_t err = {{0}};
    dv_transport_t *srv = dv__transport_create(&keys, collect, NULL, &err);
    dv_transport_t *cli = dv__transport_create(&keys, NULL, NULL, &err);
    CHECK(srv && cli);
    void *server = dv__transport_listen(srv, "tcp://127.0.0.1:*", endpoint,
                                        sizeof(endpoint), &err);
    CHECK(server != NULL);
    void *client = dv__transport_connect(cli, endpoint, &err);
    CHECK(client != NULL);
    round_trip(server, client, 1);

    uint64_t r = dv__transport_refused(srv);
    intruder(&other, server, endpoint);
    CHECK(wait_refused(srv, r, "unknown CURVE client key"));
    r = dv__transport_refused(srv);
    intruder(&stranger, server, endpoint);
    CHECK(wait_refused(srv, r, "wrong server key"));
    r = dv__transport_refused(srv);
    plain_peer(server, endpoint);
    CHECK(wait_refused(srv, r, "not CURVE"));
    round_trip(server, client, 2);

    garbage(port_of(endpoint));
    round_trip(server, client, 3);
    bad_frames(server, client);
    round_trip(server, client, 4);

    CHECK(dv__transport_listen(srv, "tcp://nonsense", NULL, 0, &err) == NULL);
    dv__transport_close(srv, &server);
    CHECK(server == NULL);
    dv__transport_destroy(&srv);
    dv__transport_destroy(&cli);
    dv__transport_destroy(NULL);
    return CHECK_DONE();
}
