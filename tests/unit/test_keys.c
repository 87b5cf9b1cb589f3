/* A job's CURVE keys: generation, the text form, and the two ways a
 * launched agent gets them (an inherited descriptor, the environment),
 * after which neither variable is left for its children. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "transport/keys.h"

static void test_generate_and_text(void)
{
    dv_job_keys_t k, back;
    char text[DV_KEYS_TEXT];
    CHECK(dv__keys_generate(&k, NULL) == 0);
    CHECK_EQ_INT(strlen(k.server_public), 40);
    CHECK(strcmp(k.server_public, k.client_public) != 0);
    dv__keys_format(&k, text);
    CHECK(dv__keys_parse(text, &back, NULL) == 0);
    CHECK(memcmp(&k, &back, sizeof(k)) == 0);
    text[strlen(text) - 1] = '\0'; /* newline optional */
    CHECK(dv__keys_parse(text, &back, NULL) == 0);
    dv__keys_wipe(&back);
    CHECK(back.server_secret[0] == '\0');
    dv__keys_wipe(NULL);
}

static void test_parse_rejects(void)
{
    dv_job_keys_t k, orig;
    char text[DV_KEYS_TEXT + 8];
    dv_error_t err = {{0}};
    CHECK(dv__keys_generate(&k, NULL) == 0);
    orig = k;
    const char *bad[] = {"", "drover-keys-1", "drover-keys-2 a b c d",
                         "drover-keys-1 short short short short"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK(dv__keys_parse(bad[i], &k, &err) == -1 && errno == EINVAL);
        CHECK(memcmp(&k, &orig, sizeof(k)) == 0);
    }
    dv__keys_format(&orig, text);
    text[20] = '"'; /* not in the Z85 alphabet */
    CHECK(dv__keys_parse(text, &k, &err) == -1);
    CHECK(strstr(err.text, "key 1 malformed") != NULL);
    dv__keys_format(&orig, text);
    strcat(text, "x");
    CHECK(dv__keys_parse(text, &k, NULL) == -1);
    dv__keys_format(&orig, text);
    text[strlen(text) - 2] = '\0'; /* last key one character short */
    CHECK(dv__keys_parse(text, &k, NULL) == -1);
}

static void test_fd_env(void)
{
    dv_job_keys_t k, got;
    CHECK(dv__keys_generate(&k, NULL) == 0);
    int p[2];
    CHECK(pipe(p) == 0);
    CHECK(dv__keys_write_fd(p[1], &k, NULL) == 0);
    close(p[1]);
    char num[16];
    snprintf(num, sizeof(num), "%d", p[0]);
    setenv(DV_KEYS_FD_ENV, num, 1);
    CHECK(dv__keys_from_env(&got, NULL) == 0);
    CHECK(memcmp(&k, &got, sizeof(k)) == 0);
    CHECK(getenv(DV_KEYS_FD_ENV) == NULL);
    CHECK(close(p[0]) == -1 && errno == EBADF); /* read and closed */

    char text[DV_KEYS_TEXT];
    dv__keys_format(&k, text);
    setenv(DV_KEYS_ENV, text, 1);
    memset(&got, 0, sizeof(got));
    CHECK(dv__keys_from_env(&got, NULL) == 0);
    CHECK(memcmp(&k, &got, sizeof(k)) == 0);
    CHECK(getenv(DV_KEYS_ENV) == NULL);

    CHECK(dv__keys_from_env(&got, NULL) == -1 && errno == ENOENT);
    setenv(DV_KEYS_FD_ENV, "nope", 1);
    CHECK(dv__keys_from_env(&got, NULL) == -1 && errno == EINVAL);
    CHECK(getenv(DV_KEYS_FD_ENV) == NULL);
    setenv(DV_KEYS_ENV, "garbage", 1);
    CHECK(dv__keys_from_env(&got, NULL) == -1 && errno == EINVAL);
}

int main(void)
{
    test_generate_and_text();
    test_parse_rejects();
    test_fd_env();
    return CHECK_DONE();
}
