/* Is a host this one: DROVER_NODE_NAME, the hostname full and short,
 * localhost, loopback and interface addresses; and node 0's words through
 * hex: every byte but NUL, empty words, words longer than one hex word. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "multinode/launch.h"

static void test_names(void)
{
    char me[256], up[300], fq[300];
    unsetenv("DROVER_NODE_NAME");
    CHECK(gethostname(me, sizeof(me) - 1) == 0);
    me[strcspn(me, ".")] = 0; /* the short name */
    CHECK(dv__host_names_self(me));
    CHECK(dv__host_is_self(me));
    snprintf(up, sizeof(up), "%s", me);
    up[0] = (char)(up[0] >= 'a' && up[0] <= 'z' ? up[0] - 32 : up[0]);
    CHECK(dv__host_names_self(up)); /* host names ignore case */
    snprintf(fq, sizeof(fq), "%s.cluster.example", me);
    CHECK(dv__host_names_self(fq) == !strchr(me, '.'));
    snprintf(fq, sizeof(fq), "%sx", me);
    CHECK(!dv__host_names_self(fq));
    CHECK(dv__host_names_self("localhost"));
    CHECK(!dv__host_names_self(""));
    CHECK(!dv__host_names_self(NULL));
    CHECK(dv__host_is_self("127.0.0.1"));
    CHECK(dv__host_is_self("127.0.1.7"));
    CHECK(!dv__host_names_self("127.0.0.1"));
    CHECK(!dv__host_is_self("192.0.2.1")); /* TEST-NET-1: nobody's */
    setenv("DROVER_NODE_NAME", "lo-a", 1);
    CHECK(dv__host_names_self("lo-a"));
    CHECK(dv__host_is_self("lo-a"));
    CHECK(!dv__host_names_self("lo-b"));
    CHECK(!dv__host_is_self(me)); /* an emulated node is only its name */
    CHECK(!dv__host_is_self("127.0.0.1"));
    unsetenv("DROVER_NODE_NAME");
}

static void round_trip(char *const *words)
{
    char **hex = dv__words_encode(words);
    CHECK(hex != NULL);
    int n = 0;
    while (hex && hex[n]) {
        CHECK(strlen(hex[n]) <= 65536);
        CHECK(strspn(hex[n], "0123456789abcdef") == strlen(hex[n]));
        n++;
    }
    char **back = hex ? dv__words_decode(hex, n) : NULL;
    CHECK(back != NULL);
    int k = 0;
    for (; back && words[k]; k++)
        CHECK(back[k] && !strcmp(back[k], words[k]));
    CHECK(back && back[k] == NULL);
    dv__launch_argv_free(back);
    dv__launch_argv_free(hex);
}

static void test_words(void)
{
    char bytes[256];
    for (int i = 1; i < 256; i++)
        bytes[i - 1] = (char)i;
    bytes[255] = 0;
    char *w1[] = {"--node0", "here", "", "a b", "it's $HOME; `x`", bytes, NULL};
    round_trip(w1);
    size_t big = 200000;
    char *long_word = malloc(big + 1);
    memset(long_word, 'x', big);
    long_word[big] = 0;
    char *w2[] = {"--hostfile-text", long_word, "--", "prog", NULL};
    round_trip(w2);
    free(long_word);
    char *w3[] = {NULL};
    char **h3 = dv__words_encode(w3); /* no words: one empty hex word */
    CHECK(h3 && h3[0] && !h3[0][0] && !h3[1]);
    dv__launch_argv_free(h3);
    char *bad[] = {"6", "zz", "6100" /* "a" then nothing after its NUL */};
    CHECK(dv__words_decode(bad, 1) == NULL);     /* odd length */
    CHECK(dv__words_decode(bad + 1, 1) == NULL); /* not hex */
    char *unterminated[] = {"6162"};
    CHECK(dv__words_decode(unterminated, 1) == NULL);
    char **ok = dv__words_decode(bad + 2, 1);
    CHECK(ok && !strcmp(ok[0], "a") && !ok[1]);
    dv__launch_argv_free(ok);
    CHECK(dv__words_decode(bad, 0) == NULL);
}

int main(void)
{
    test_names();
    test_words();
    return CHECK_DONE();
}
