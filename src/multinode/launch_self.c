/* Is a host this one? (see launch.h): by name (DROVER_NODE_NAME, the
 * hostname full or short) and by address (the interfaces' addresses, the
 * name resolved once); and the hex form in which `drover run`'s words reach
 * node 0 through a launcher that may pass them to a remote shell. */
#define _GNU_SOURCE
#include "multinode/launch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/runtime.h"

#define HEX_WORD_MAX 65536 /* bytes of one hex word (under MAX_ARG_STRLEN) */

/* a and b name the same host: equal, or one has no domain and equals the
 * other's first label. */
static int same_name(const char *a, const char *b)
{
    if (!strcasecmp(a, b))
        return 1;
    size_t la = strcspn(a, "."), lb = strcspn(b, ".");
    return la == lb && (!a[la] || !b[lb]) && !strncasecmp(a, b, la);
}

int dv__host_names_self(const char *name)
{
    const char *emulated = getenv(DV_ENV_NODE_NAME);
    char me[256];
    if (!name || !*name)
        return 0;
    if (emulated && *emulated)
        return same_name(name, emulated);
    if (!strcasecmp(name, "localhost"))
        return 1;
    if (gethostname(me, sizeof(me) - 1) < 0)
        return 0;
    me[sizeof(me) - 1] = 0;
    return same_name(name, me);
}

static int loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)sa;
        return (ntohl(s->sin_addr.s_addr) >> 24) == 127;
    }
    const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;
    return sa->sa_family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&s->sin6_addr);
}

static int same_addr(const struct sockaddr *a, const struct sockaddr *b)
{
    if (!a || !b || a->sa_family != b->sa_family)
        return 0;
    if (a->sa_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    return a->sa_family == AF_INET6 &&
           !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                   &((const struct sockaddr_in6 *)b)->sin6_addr,
                   sizeof(struct in6_addr));
}

/* An address of name is one of this host's. */
static int addr_is_self(const char *name)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    struct ifaddrs *ifs = NULL;
    int found = 0;
    if (getaddrinfo(name, NULL, &hints, &ai) != 0)
        return 0;
    if (getifaddrs(&ifs) < 0)
        ifs = NULL;
    for (struct addrinfo *a = ai; a && !found; a = a->ai_next) {
        found = loopback(a->ai_addr);
        for (struct ifaddrs *i = ifs; i && !found; i = i->ifa_next)
            found = same_addr(a->ai_addr, i->ifa_addr);
    }
    freeifaddrs(ifs);
    freeaddrinfo(ai);
    return found;
}

int dv__host_is_self(const char *name)
{
    if (dv__host_names_self(name))
        return 1;
    /* Emulated nodes share the machine's addresses: only the name says. */
    const char *emulated = getenv(DV_ENV_NODE_NAME);
    return !(emulated && *emulated) && name && *name && addr_is_self(name);
}

char **dv__words_encode(char *const *words)
{
    static const char digits[] = "0123456789abcdef";
    size_t total = 0;
    for (int i = 0; words[i]; i++)
        total += strlen(words[i]) + 1;
    size_t nw = total / (HEX_WORD_MAX / 2) + 1, at = 0;
    char **out = calloc(nw + 1, sizeof(char *));
    if (!out)
        return NULL;
    for (size_t w = 0; w < nw; w++)
        if (!(out[w] = malloc(HEX_WORD_MAX + 1))) {
            dv__launch_argv_free(out);
            errno = ENOMEM;
            return NULL;
        }
    for (int i = 0; words[i]; i++) {
        size_t len = strlen(words[i]) + 1; /* with its NUL, the separator */
        for (size_t k = 0; k < len; k++, at++) {
            unsigned char c = (unsigned char)words[i][k];
            char *o =
                out[at / (HEX_WORD_MAX / 2)] + 2 * (at % (HEX_WORD_MAX / 2));
            o[0] = digits[c >> 4];
            o[1] = digits[c & 15];
        }
    }
    for (size_t w = 0; w < nw; w++)
        out[w][w + 1 < nw ? HEX_WORD_MAX : 2 * (at % (HEX_WORD_MAX / 2))] = 0;
    return out;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                  : -1;
}

char **dv__words_decode(char *const *hex, int n)
{
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += strlen(hex[i]);
    char *bytes = malloc(len / 2 + 1);
    size_t nb = 0, nwords = 0;
    int bad = len % 2 != 0 || len == 0;
    for (int i = 0; i < n && bytes && !bad; i++)
        for (const char *p = hex[i]; *p && !bad; p += 2) {
            int h = hexval(p[0]), l = p[1] ? hexval(p[1]) : -1;
            bad = h < 0 || l < 0;
            if (!bad) {
                bytes[nb] = (char)(h << 4 | l);
                nwords += bytes[nb++] == 0;
            }
        }
    if (!bytes || bad || nb == 0 || bytes[nb - 1] != 0) {
        free(bytes);
        errno = bytes ? EINVAL : ENOMEM;
        return NULL;
    }
    char **out = calloc(nwords + 1, sizeof(char *));
    size_t w = 0;
    for (size_t k = 0; out && k < nb; k += strlen(bytes + k) + 1)
        if (!(out[w++] = strdup(bytes + k))) {
            dv__launch_argv_free(out);
            out = NULL;
        }
    free(bytes);
    if (!out)
        errno = ENOMEM;
    return out;
}
