/* A pool map: squares of 0..N-1 computed by a pool with one worker per
 * usable CPU, with the results in item order, then a streaming pass that
 * takes results as they finish. Usage: example_pool_map [N] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <drover/drover.h>

DV_TASK(square)(const void *arg, size_t len, dv_result_t *res)
{
    int64_t x;
    if (len != sizeof(x))
        return 2;
    memcpy(&x, arg, sizeof(x));
    x *= x;
    return dv_result_set(res, &x, sizeof(x)) == 0 ? 0 : 3;
}

static int check(const dv_item_result_t *r, int64_t want)
{
    int64_t got;
    if (!r->ok || r->len != sizeof(got))
        return -1;
    memcpy(&got, r->data, sizeof(got));
    return got == want ? 0 : -1;
}

int main(int argc, char **argv)
{
    dv_error_t err;
    if (dv_init(&argc, &argv, &err) < 0) {
        fprintf(stderr, "drover: pool_map: %s\n", err.text);
        return 1;
    }
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 100;
    if (n < 1 || n > 10000000) {
        fprintf(stderr, "drover: pool_map: bad item count\n");
        return 2;
    }
    dv_node_info_t node;
    int workers = dv_node_get(0, &node, &err) == 0 ? node.cpus : 2;
    int64_t *xs = malloc((size_t)n * sizeof(*xs));
    dv_item_t *items = malloc((size_t)n * sizeof(*items));
    dv_pool_t *pool = xs && items ? dv_pool_create(workers, NULL, &err) : NULL;
    if (!pool) {
        fprintf(stderr, "drover: pool_map: %s\n", err.text);
        return 1;
    }
    for (long i = 0; i < n; i++) {
        xs[i] = i;
        items[i] = (dv_item_t){&xs[i], sizeof(xs[i])};
    }
    dv_item_result_t *rs;
    int bad = 0;
    if (dv_pool_map(pool, "square", items, (size_t)n, 0, &rs, &err) < 0) {
        fprintf(stderr, "drover: pool_map: %s\n", err.text);
        return 1;
    }
    for (long i = 0; i < n; i++)
        bad += check(&rs[i], (int64_t)i * i) < 0;
    dv_item_results_free(rs, (size_t)n);
    dv_async_t *a =
        dv_pool_map_async(pool, "square", items, (size_t)n, 1, &err);
    dv_item_result_t r;
    long seen = 0;
    while (a && dv_async_next(a, 30, &r, &err) == 0) {
        bad += check(&r, (int64_t)r.index * (int64_t)r.index) < 0;
        seen++;
        dv_item_result_clear(&r);
    }
    dv_async_destroy(&a);
    printf("pool_map: %d workers, %ld items mapped, %ld streamed, %d wrong\n",
           workers, n, seen, bad);
    dv_pool_close(pool);
    dv_pool_join(pool, 30, &err);
    dv_pool_destroy(&pool);
    free(xs);
    free(items);
    dv_finalize();
    return bad || seen != n ? 1 : 0;
}
