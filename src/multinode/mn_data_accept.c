/* The data port's door: one thread polls the listener and every
 * connection that has not proved the job's token yet (data_link.h's
 * handshake, one step per readable event, no thread and no blocking
 * read). At most MN_DATA_PENDING wait at once, each for MN_DATA_AUTH_S;
 * a newcomer beyond the cap pushes out the oldest, so strangers that
 * connect and say nothing cost a slot for a while, never a thread, and
 * the job's own processes (which answer at once) still get in. Every peer
 * sent away is logged, at most MN_DATA_LOG_PER_S lines a second so that a
 * flood cannot fill a disk (mn_data_refuse, also used by mn_data.c);
 * those that pass are served by mn_data.c. */
#define _GNU_SOURCE
#include "multinode/mn_data.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Accepts per wake-up, so that a flood cannot starve the waiting ones. */
#define ACCEPT_BURST 64

/* Seconds on the monotonic clock (here, not mn_now: the fuzz target and
 * the unit test build this file without the node service). */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void peer_text(const struct sockaddr_in *sa, char *out, size_t cap)
{
    char ip[INET_ADDRSTRLEN] = "?";
    inet_ntop(AF_INET, &sa->sin_addr, ip, sizeof(ip));
    snprintf(out, cap, "%s:%u", ip, (unsigned)ntohs(sa->sin_port));
}

/* Forget waiting connection i (the last one takes its place). */
static void forget(mn_data_t *d, int i)
{
    dv__link_free(&d->pend[i].link);
    d->pend[i] = d->pend[--d->npend];
}

static void drop(mn_data_t *d, int i, const char *why)
{
    mn_data_refuse(d, d->pend[i].peer, why);
    close(d->pend[i].fd);
    forget(d, i);
}

static int oldest(const mn_data_t *d)
{
    int o = 0;
    for (int i = 1; i < d->npend; i++)
        if (d->pend[i].deadline < d->pend[o].deadline)
            o = i;
    return o;
}

/* A new connection: it gets the hello and a place in the waiting room. */
static void wait_for(mn_data_t *d, int fd, const struct sockaddr_in *sa)
{
    if (d->npend == MN_DATA_PENDING)
        drop(d, oldest(d), "too many connections waiting to authenticate");
    struct mn_data_pending *p = &d->pend[d->npend];
    uint8_t hello[DV_LINK_HELLO];
    memset(p, 0, sizeof(*p));
    p->fd = fd;
    p->deadline = now_s() + MN_DATA_AUTH_S;
    peer_text(sa, p->peer, sizeof(p->peer));
    d->npend++;
    if (dv__link_hello(&p->link, fd, hello) < 0 ||
        send(fd, hello, sizeof(hello), MSG_NOSIGNAL | MSG_DONTWAIT) !=
            (ssize_t)sizeof(hello))
        drop(d, d->npend - 1, "cannot send the challenge");
}

/* Out of descriptors: make room by sending the oldest stranger away;
 * with none waiting, take the newcomer on the spare file only to tell it
 * so (else it would wait in the backlog, and the listener would stay
 * readable). Returns 1 when accepting must stop for a moment. */
static int no_descriptors(mn_data_t *d, int e)
{
    if (d->npend > 0) {
        drop(d, oldest(d), "out of descriptors");
        return 0;
    }
    if (d->spare >= 0)
        close(d->spare);
    struct sockaddr_in sa = {0};
    socklen_t sl = sizeof(sa);
    int fd = accept4(d->lfd, (struct sockaddr *)&sa, &sl,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
        const char *why = e == ENFILE ? "no file left on the node for it"
                                      : "too many open files";
        char peer[64];
        uint8_t hello[DV_LINK_HELLO];
        peer_text(&sa, peer, sizeof(peer));
        dv__link_refusal(hello, e, why);
        (void)!send(fd, hello, sizeof(hello), MSG_NOSIGNAL | MSG_DONTWAIT);
        close(fd);
        mn_data_refuse(d, peer, why);
    }
    d->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && d->spare >= 0)
        return 0;
    d->no_accept_until = now_s() + 0.1; /* still none: do not spin */
    return 1;
}

static void accept_some(mn_data_t *d)
{
    for (int k = 0; k < ACCEPT_BURST; k++) {
        struct sockaddr_in sa = {0};
        socklen_t sl = sizeof(sa);
        int fd = accept4(d->lfd, (struct sockaddr *)&sa, &sl,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            wait_for(d, fd, &sa);
        } else if (errno == EMFILE || errno == ENFILE) {
            if (no_descriptors(d, errno))
                return;
        } else if (errno != EINTR && errno != ECONNABORTED) {
            return; /* EAGAIN: nothing more */
        }
    }
}

/* Waiting connection i is readable: more of its answer, or its end. */
static void on_answer(mn_data_t *d, int i)
{
    struct mn_data_pending *p = &d->pend[i];
    ssize_t k = recv(p->fd, p->answer + p->got, sizeof(p->answer) - p->got,
                     MSG_DONTWAIT);
    if (k < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (k <= 0) {
        drop(d, i, "hung up before authenticating");
        return;
    }
    p->got += (size_t)k;
    if (p->got < sizeof(p->answer))
        return;
    uint8_t proof[DV_LINK_PROOF];
    if (dv__link_accept(&p->link, d->token, p->answer, proof) < 0) {
        drop(d, i, "wrong token");
        return;
    }
    int fl = fcntl(p->fd, F_GETFL);
    if (send(p->fd, proof, sizeof(proof), MSG_NOSIGNAL | MSG_DONTWAIT) !=
            (ssize_t)sizeof(proof) ||
        fl < 0 || fcntl(p->fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        drop(d, i, "hung up before authenticating");
        return;
    }
    mn_data_admit(d, &p->link, p->peer); /* the fd is the server's now */
    forget(d, i);
}

static void expire(mn_data_t *d, double now)
{
    for (int i = d->npend - 1; i >= 0; i--)
        if (d->pend[i].deadline <= now)
            drop(d, i, "no answer to the challenge within 3 s");
}

/* Milliseconds until the next deadline (at most 200: stop is looked at). */
static int wait_ms(const mn_data_t *d, double now)
{
    double t = now + 0.2;
    for (int i = 0; i < d->npend; i++)
        if (d->pend[i].deadline < t)
            t = d->pend[i].deadline;
    if (d->no_accept_until > now && d->no_accept_until < t)
        t = d->no_accept_until;
    int ms = (int)((t - now) * 1000.0) + 1;
    return ms < 1 ? 1 : ms;
}

void *mn_data_acceptor(void *arg)
{
    mn_data_t *d = arg;
    while (!atomic_load(&d->stopping)) {
        struct pollfd pf[1 + MN_DATA_PENDING];
        double now = now_s();
        int listening = now >= d->no_accept_until, n = 0;
        if (listening)
            pf[n++] = (struct pollfd){d->lfd, POLLIN, 0};
        int base = n;
        for (int i = 0; i < d->npend; i++)
            pf[n++] = (struct pollfd){d->pend[i].fd, POLLIN, 0};
        if (poll(pf, (nfds_t)n, wait_ms(d, now)) > 0) {
            /* From the last: forget() moves the last into the hole. */
            for (int i = n - 1; i >= base; i--)
                if (pf[i].revents)
                    on_answer(d, i - base);
            if (listening && pf[0].revents)
                accept_some(d);
        }
        expire(d, now_s());
        mn_data_log_flush(d);
    }
    while (d->npend > 0) {
        close(d->pend[0].fd);
        forget(d, 0);
    }
    return NULL;
}

/* ---- refusals, logged ---- */

/* Under log_mu: start a new second; a summary of what it did not show. */
static void log_roll(mn_data_t *d, double now, char *sum, size_t cap)
{
    *sum = 0;
    if (now - d->log_window < 1.0)
        return;
    if (d->log_dropped)
        snprintf(sum, cap, "data port: %lu more refused connection%s not shown",
                 d->log_dropped, d->log_dropped == 1 ? "" : "s");
    d->log_window = now;
    d->log_lines = 0;
    d->log_dropped = 0;
}

void mn_data_refuse(mn_data_t *d, const char *peer, const char *why)
{
    atomic_fetch_add(&d->refused, 1);
    if (!d->log)
        return;
    char sum[96], line[256];
    pthread_mutex_lock(&d->log_mu);
    log_roll(d, now_s(), sum, sizeof(sum));
    int show = d->log_lines < MN_DATA_LOG_PER_S;
    if (show)
        d->log_lines++;
    else
        d->log_dropped++;
    pthread_mutex_unlock(&d->log_mu);
    if (*sum)
        d->log(d->log_arg, sum);
    if (show) {
        snprintf(line, sizeof(line), "data port: refused %s: %s", peer, why);
        d->log(d->log_arg, line);
    }
}

void mn_data_log_flush(mn_data_t *d)
{
    char sum[96];
    if (!d->log)
        return;
    pthread_mutex_lock(&d->log_mu);
    log_roll(d, now_s(), sum, sizeof(sum));
    pthread_mutex_unlock(&d->log_mu);
    if (*sum)
        d->log(d->log_arg, sum);
}
